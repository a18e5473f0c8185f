import type { NodeFactory } from './node.js';

/**
 * `@type` → factory for every node this module can run. A type missing here still validates (the
 * topology is accepted) but Activate answers 400 ModuleValidationError naming the node.
 */
const factories: NodeFactory[] = [];

export function registerNodeFactory(f: NodeFactory): void {
  const i = factories.findIndex((x) => x.type === f.type);
  if (i >= 0) factories[i] = f;
  else factories.push(f);
}

export function nodeRegistry(): ReadonlyMap<string, NodeFactory> {
  return new Map(factories.map((f) => [f.type, f]));
}
