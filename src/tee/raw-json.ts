import { BuildtraceError } from '../errors.js';

/**
 * The exact text of one member of a top-level JSON object. Intel signs the bytes of
 * `tcbInfo` / `enclaveIdentity` as served, so the signature is checked over this slice,
 * never over a re-serialisation.
 */
export function rawMember(text: string, name: string, subject: string): string {
  const fail = (msg: string): never => {
    throw new BuildtraceError('JSON_INVALID', `${subject}: ${msg}`, { subject });
  };
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\r\n'.includes(text[i] as string)) i++;
  };
  const str = (): string => {
    if (text[i] !== '"') fail(`expected a string at offset ${i}`);
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail('unterminated string');
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const skipValue = (): void => {
    ws();
    if (text[i] === '"') {
      str();
      return;
    }
    if (text[i] === '{' || text[i] === '[') {
      let depth = 0;
      while (i < text.length) {
        const c = text[i] as string;
        if (c === '"') {
          str();
          continue;
        }
        if (c === '{' || c === '[') depth++;
        else if (c === '}' || c === ']') depth--;
        i++;
        if (depth === 0) return;
      }
      fail('unterminated value');
    }
    while (i < text.length && !',}] \t\r\n'.includes(text[i] as string)) i++;
  };
  ws();
  if (text[i] !== '{') fail('not a JSON object');
  i++;
  for (;;) {
    ws();
    if (text[i] === '}') break;
    const key = str();
    ws();
    if (text[i] !== ':') fail(`expected ':' at offset ${i}`);
    i++;
    ws();
    const start = i;
    skipValue();
    if (key === name) return text.slice(start, i);
    ws();
    if (text[i] === ',') i++;
    else if (text[i] !== '}') fail(`expected ',' or '}' at offset ${i}`);
  }
  return fail(`no member ${JSON.stringify(name)}`);
}
