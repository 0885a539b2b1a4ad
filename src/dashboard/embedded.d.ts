// Types of the dashboard files embedded with `import x from "..." with { type: "file" }`: their path.
declare module "*.css" {
  const path: string;
  export default path;
}
declare module "*/dashboard/app.js" {
  const path: string;
  export default path;
}
