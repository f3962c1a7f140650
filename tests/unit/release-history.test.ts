/** What `npm run rollback` returns to, from the activation history. */
import { describe, expect, it } from "vitest";
import { previousRelease } from "../../lib/node/releases/history.ts";
import type { Activation } from "../../lib/node/releases/history.ts";

const at = (id: string, how: Activation["how"]): Activation => ({ id, how, at: "2026-12-05T00:00:00.000Z" });

describe("previousRelease", () => {
  it("is the release live before the live one, starts included", () => {
    expect(previousRelease([at("a", "start"), at("b", "deploy")], "b")).toBe("a");
    expect(previousRelease([at("a", "start"), at("b", "deploy"), at("b", "start")], "b")).toBe("a");
  });

  it("passes over a start that served the sources over the deployed release", () => {
    const history = [at("a", "start"), at("b", "deploy"), at("b", "start"), at("s", "sources"), at("b", "start")];
    expect(previousRelease(history, "b")).toBe("a");
  });

  it("is nothing when only the live release was ever live", () => {
    expect(previousRelease([at("a", "start"), at("a", "start")], "a")).toBeUndefined();
  });
});
