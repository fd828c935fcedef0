// Entry point `sealed-session/express-session`: the express-session store adapter (lib/http/express.ts).
export * from './http/express'
