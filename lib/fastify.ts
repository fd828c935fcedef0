// Entry point `sealed-session/fastify`: the Fastify 5 plugin (lib/http/fastify.ts).
export * from './http/fastify'
export { default } from './http/fastify'
