/** DSSE v1 pre-authentication encoding: the exact bytes that are signed. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `, 'ascii'), type, Buffer.from(` ${payload.length} `, 'ascii'), payload]);
}

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
