/**
 * The derivation graph walked inputs first: each node once, after all of its inputs (a post-
 * order from `root` along `inputsOf`). Iterative, because closures are deep enough to overflow
 * the call stack. A generator, so that a caller can yield to the event loop between nodes
 * (closure.ts, while the graph loads) or just collect them (positions.ts).
 */
export function* inputsFirst(root: string, inputsOf: (node: string) => Iterable<string>): Generator<string, void, undefined> {
  const state = new Map<string, 1 | 2>();
  const stack: [string, boolean][] = [[root, false]];
  while (stack.length > 0) {
    const [p, expanded] = stack.pop() as [string, boolean];
    if (expanded) {
      if (state.get(p) !== 2) {
        state.set(p, 2);
        yield p;
      }
      continue;
    }
    if (state.has(p)) continue;
    state.set(p, 1);
    stack.push([p, true]);
    for (const d of inputsOf(p)) if (!state.has(d)) stack.push([d, false]);
  }
}
