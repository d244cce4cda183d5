// The raw binding is typed in @bsx/core (packages/core-ts/src/engine/binding.ts).
declare const binding: unknown;
export = binding;
