// Types of the template builder's files embedded with `import x from "..." with { type: "file" }`: their path.
declare module "*.sh" {
  const path: string;
  export default path;
}
declare module "*.py" {
  const path: string;
  export default path;
}
declare module "*.java" {
  const path: string;
  export default path;
}
declare module "*.mjs" {
  const path: string;
  export default path;
}
declare module "*.txt" {
  const path: string;
  export default path;
}
declare module "*.conf" {
  const path: string;
  export default path;
}
declare module "*/onebox-init" {
  const path: string;
  export default path;
}
declare module "*/onebox-runas" {
  const path: string;
  export default path;
}
declare module "*/guest/agent.js" {
  const path: string;
  export default path;
}
