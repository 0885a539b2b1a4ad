// Type of the onebox-vmm executable embedded with `import x from ".../onebox-vmm" with { type: "file" }`: its path.
declare module "*/onebox-vmm" {
  const path: string;
  export default path;
}
