// Stored text (user ids, names, data) made safe to print on a terminal: control characters
// (C0, DEL, C1) could move the cursor, recolour or forge lines, and bidi controls could show
// text in another order than it is stored. Each becomes a visible \u{…} escape; a backslash
// is doubled, so an escape in the output always means the character was there.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\\\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

export function printable(text: string): string {
  return text.replace(UNSAFE, (c) => (c === '\\' ? '\\\\' : `\\u{${c.codePointAt(0)!.toString(16)}}`))
}
