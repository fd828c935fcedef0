// Entry point `sealed-session/fetch`: withSession for Web-standard handlers (lib/http/fetch.ts).
export * from './http/fetch'
