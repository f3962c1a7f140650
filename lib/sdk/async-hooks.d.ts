// The one part of node:async_hooks (workerd, under nodejs_compat) the gateway uses; the worker side is
// type-checked without Node's types.
declare module "node:async_hooks" {
  export class AsyncLocalStorage<T> {
    getStore(): T | undefined;
    run<R>(store: T, callback: () => R): R;
  }
}
