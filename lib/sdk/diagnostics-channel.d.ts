// The part of node:diagnostics_channel (workerd under nodejs_compat, Deno, Node) the SDK and the gateway use; the worker
// side is type-checked without Node's types.
declare module "node:diagnostics_channel" {
  export interface Channel {
    readonly hasSubscribers: boolean;
    publish(message: unknown): void;
  }
  export function channel(name: string): Channel;
  export function subscribe(name: string, onMessage: (message: unknown, name: string) => void): void;
}
