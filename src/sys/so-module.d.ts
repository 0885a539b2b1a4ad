// Type of native files embedded with `import x from "...so" with { type: "file" }`: their path.
declare module "*.so" {
  const path: string;
  export default path;
}
