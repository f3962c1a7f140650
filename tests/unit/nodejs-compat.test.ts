import { describe, expect, it } from "vitest";
import { hasNodejsCompat, withNodejsCompat } from "../../lib/node/build/nodejs-compat.ts";

describe("nodejs_compat by date and flags", () => {
  it("is on by default from 2026-08-04, as workerd reads it, unless turned off", () => {
    expect(hasNodejsCompat("2026-08-03", [])).toBe(false);
    expect(hasNodejsCompat("2026-08-04", [])).toBe(true);
    expect(hasNodejsCompat("2026-11-23", ["no_nodejs_compat"])).toBe(false);
    expect(hasNodejsCompat("2025-01-01", ["nodejs_compat"])).toBe(true);
    expect(hasNodejsCompat("2025-01-01", ["nodejs_compat_v2"])).toBe(true);
  });

  it("adds the flag only where the date does not give it (workerd warns about a redundant one at every start)", () => {
    expect(withNodejsCompat("2026-11-23", ["service_binding_extra_handlers"])).toEqual(["service_binding_extra_handlers"]);
    expect(withNodejsCompat("2026-04-20", ["service_binding_extra_handlers"])).toEqual(["service_binding_extra_handlers", "nodejs_compat"]);
    expect(withNodejsCompat("2026-04-20", ["nodejs_compat"])).toEqual(["nodejs_compat"]);
  });
});
