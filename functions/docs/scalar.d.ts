// Scalar's standalone bundle, imported `with { type: "text" }`: its text, as a string.
declare module "@scalar/api-reference/browser/standalone.js" {
  const text: string;
  export default text;
}
