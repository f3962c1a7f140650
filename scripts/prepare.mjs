// npm's `prepare` step starts here, in plain JavaScript: on a Node that cannot run the project's TypeScript (older
// than 22.18; npm install brings Node 24 on Linux x64 and arm64), it says what is needed instead of failing the
// install. Otherwise it runs scripts/prepare.ts.
if (!process.features.typescript) {
  console.warn(
    `workyard: Node ${process.version} cannot run the project's TypeScript, so the first build waits for npm start. ` +
      "npm install brings Node 24 on Linux x64 and arm64; elsewhere use Node 22.18 or newer (npm run doctor checks).",
  );
  process.exit(0);
}
await import("./prepare.ts");
