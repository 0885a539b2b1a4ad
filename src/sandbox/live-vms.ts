// The VMs this daemon holds a handle for: their run dirs, open-stream abort signals, and forward sockets.
import { FORWARDED_PORTS } from "../machine/vm-config.ts";
import { forwardSocketPath, type VmHandle } from "../machine/vm-driver.ts";
import { unavailable } from "../util/errors.ts";
import type { VmEnding } from "./lifecycle.ts";

export interface Live {
  handle: VmHandle;
  runDir: string;
  /** Set when the daemon ends this VM (kill, pause to disk, detach): its exit is then no crash. */
  ending: VmEnding | null;
  /** Aborted when the sandbox stops or pauses: cuts its open data-plane streams (spec §3.1). */
  streams: AbortController;
  /** Forward sockets opened at run time, by guest port. */
  ports: Map<number, string>;
}

/** Abort reason for a sandbox's open data-plane streams. Bun logs stream errors of the responses it
 *  is sending, so the reason is what shows in the daemon's log. */
function streamsClosed(id: string): Error {
  return new Error(`sandbox ${id} stopped or paused: its open data-plane streams were closed`);
}

export class LiveVms {
  private map = new Map<string, Live>();

  add(id: string, handle: VmHandle, runDir: string): Live {
    const live: Live = { handle, runDir, ending: null, streams: new AbortController(), ports: new Map() };
    this.map.set(id, live);
    return live;
  }

  get(id: string): Live | undefined {
    return this.map.get(id);
  }

  has(id: string): boolean {
    return this.map.has(id);
  }

  ids(): string[] {
    return [...this.map.keys()];
  }

  all(): Live[] {
    return [...this.map.values()];
  }

  /** Forgets the VM and cuts its streams. */
  remove(id: string): void {
    this.map.get(id)?.streams.abort(streamsClosed(id));
    this.map.delete(id);
  }

  /** Cuts the open streams (kill, pause); `renew` gives later requests a fresh signal (after resume). */
  cutStreams(id: string, renew: boolean): void {
    const live = this.map.get(id);
    if (!live) return;
    live.streams.abort(streamsClosed(id));
    if (renew) live.streams = new AbortController();
  }

  /** The forward socket for guest TCP `port`: envd and the interpreter are forwarded at spawn,
   *  other ports on first use through the vmm's `forward PORT` (docs/architecture.md). */
  async portSocket(id: string, port: number): Promise<string> {
    const live = this.map.get(id);
    if (!live) throw unavailable(`sandbox ${id} is not running`);
    if (FORWARDED_PORTS.includes(port)) return forwardSocketPath(live.runDir, port);
    let path = live.ports.get(port);
    if (!path) {
      path = await live.handle.forward(port);
      live.ports.set(port, path);
    }
    return path;
  }
}
