// The Debian packages onebox runs at run time (its template builder's scripts, guest networking, TLS), each with a
// file that shows it is installed: `onebox doctor` names the missing ones, and install.sh installs the list.
import { existsSync } from "node:fs";

export interface HostPackage {
  /** The Debian (bookworm) package. */
  name: string;
  /** A command on PATH, or an absolute path, that the package installs. */
  provides: string;
  why: string;
}

export const HOST_PACKAGES: readonly HostPackage[] = [
  { name: "debootstrap", provides: "debootstrap", why: "the default templates' Debian tree (scripts/mkrootfs.sh)" },
  { name: "e2fsprogs", provides: "mkfs.ext4", why: "template images (rootfs.ext4, layer.ext4)" },
  { name: "passwd", provides: "useradd", why: "the image's user `user`" },
  { name: "util-linux", provides: "flock", why: "the image scripts' cache lock, mountpoint, findmnt, runuser" },
  { name: "dpkg", provides: "dpkg-deb", why: "the image's stub package; the guest kernel's .deb" },
  { name: "cpio", provides: "cpio", why: "the guest initramfs (scripts/mkinitramfs.sh)" },
  { name: "binutils", provides: "objcopy", why: "kernel module dependencies for the initramfs" },
  { name: "kmod", provides: "depmod", why: "the guest kernel's module list (scripts/fetch-kernel.sh)" },
  { name: "xz-utils", provides: "xz", why: "compressed kernel modules" },
  { name: "zstd", provides: "zstd", why: "compressed kernel modules" },
  { name: "ca-certificates", provides: "/etc/ssl/certs/ca-certificates.crt", why: "HTTPS to the Debian mirror and registries" },
  { name: "skopeo", provides: "skopeo", why: "templates from OCI images (pull)" },
  { name: "umoci", provides: "umoci", why: "templates from OCI images (unpack)" },
  { name: "iproute2", provides: "ip", why: "guest networking" },
  { name: "nftables", provides: "nft", why: "guest networking (NAT, egress rules)" },
  { name: "libbpf1", provides: "/usr/lib/x86_64-linux-gnu/libbpf.so.1", why: "guest networking (libonebox-net.so links it)" },
  { name: "openssl", provides: "openssl", why: "onebox serve --tls (its CA and certificates)" },
];

/** The packages whose file is not there. */
export function missingHostPackages(packages: readonly HostPackage[] = HOST_PACKAGES): HostPackage[] {
  return packages.filter((p) => (p.provides.startsWith("/") ? !existsSync(p.provides) : Bun.which(p.provides, { PATH: sbinPath() }) === null));
}

/** PATH with the sbin dirs: a non-root shell's PATH often lacks them, and debootstrap and useradd live there. */
function sbinPath(): string {
  const dirs = (process.env.PATH ?? "").split(":").filter(Boolean);
  for (const d of ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"]) if (!dirs.includes(d)) dirs.push(d);
  return dirs.join(":");
}

/** The command that installs `missing`. */
export function aptCommand(missing: readonly HostPackage[]): string {
  return `apt-get install -y --no-install-recommends ${missing.map((p) => p.name).join(" ")}`;
}
