// Entry point `sealed-session/express`: the express-session store adapter (lib/http/express.ts).
export * from './http/express'
