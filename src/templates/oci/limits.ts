// Caps on what an OCI build takes in: checked before the download (from the registry's manifest) and
// again on what was unpacked, so a huge or many-layered image fails early and costs no disk.
export interface OciLimits {
  /** Sum of the layers' (compressed) sizes as the manifest states them. */
  maxImageBytes: number;
  /** Layers in the manifest (Docker's own limit is 127 on overlayfs). */
  maxLayers: number;
  /** Bytes of the unpacked root tree (du), before onebox's files are added. */
  maxRootfsBytes: number;
  /** The whole build, pull to register. */
  timeoutMs: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_OCI_LIMITS: OciLimits = {
  maxImageBytes: 4096 * MiB,
  maxLayers: 128,
  maxRootfsBytes: 16384 * MiB,
  timeoutMs: 30 * 60_000,
};

/** A size for a message: MiB, or KiB below one MiB (a cap of 1 KiB must not read as "1 MiB"). */
export function mib(bytes: number): string {
  return bytes < MiB ? `${Math.ceil(bytes / 1024)} KiB` : `${Math.ceil(bytes / MiB)} MiB`;
}
