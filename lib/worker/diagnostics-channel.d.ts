// The one part of node:diagnostics_channel (workerd, under nodejs_compat) the gateway uses; the worker
// side is type-checked without Node's types.
declare module "node:diagnostics_channel" {
  export interface Channel {
    publish(message: unknown): void;
  }
  export function channel(name: string): Channel;
}
