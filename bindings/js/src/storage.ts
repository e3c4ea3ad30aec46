/**
 * Where the SDK keeps its state in the browser: `localStorage` (or any store with the same three
 * methods), under keys named by the vendor key and the product, so that two products of one
 * site never share a grant. One JSON value per entry, as the Rust SDK keeps one file each:
 *
 * | entry | content |
 * | --- | --- |
 * | `device-id` | the random device UUID |
 * | `grant` | the last verified signed grant, its certificates and the server identity |
 * | `session` | the report session: server, ticket, session key, last message number |
 * | `refusal` | why the server last refused this device for good (the grant was forgotten) |
 * | `clock` | the highest clock reading seen (rollback detection) |
 * | `usage` | the open slice's counters and the reports not yet acknowledged |
 */

import { ErrorCode, TallyError } from "./errors.js";

/** The part of the Web Storage API the SDK uses; `localStorage` is one. */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** A store in memory, for tests and for hosts without `localStorage` (nothing survives a restart). */
export class MemoryStorage implements KeyValueStore {
  private readonly entries = new Map<string, string>();
  getItem(key: string): string | null {
    return this.entries.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.entries.set(key, value);
  }
  removeItem(key: string): void {
    this.entries.delete(key);
  }
  keys(): string[] {
    return [...this.entries.keys()];
  }
}

export type EntryName = "device-id" | "grant" | "session" | "refusal" | "clock" | "usage";

function failed(what: string, e: unknown): TallyError {
  return new TallyError(ErrorCode.LocalStorageFailed, `${what}: ${(e as Error).message ?? e}`);
}

/** The state of one product of one vendor in a {@link KeyValueStore}. */
export class StateStore {
  constructor(
    private readonly backend: KeyValueStore,
    /** Prefix of every key: `tally/<vendor key>/<product>/`. */
    readonly prefix: string,
  ) {}

  static for(backend: KeyValueStore, vendorPublicKey: string, product: string): StateStore {
    return new StateStore(backend, `tally/${vendorPublicKey.trim()}/${product}/`);
  }

  /** The entry's value; `undefined` when absent. A damaged entry is a `local_storage_failed`. */
  read<T>(name: EntryName): T | undefined {
    let text: string | null;
    try {
      text = this.backend.getItem(this.prefix + name);
    } catch (e) {
      throw failed(`cannot read ${name}`, e);
    }
    if (text === null) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw failed(`the stored ${name} is damaged`, e);
    }
  }

  write(name: EntryName, value: unknown): void {
    try {
      this.backend.setItem(this.prefix + name, JSON.stringify(value));
    } catch (e) {
      throw failed(`cannot write ${name}`, e);
    }
  }

  remove(name: EntryName): void {
    try {
      this.backend.removeItem(this.prefix + name);
    } catch (e) {
      throw failed(`cannot remove ${name}`, e);
    }
  }
}

/** The browser's `localStorage` when there is one. */
export function defaultStorage(): KeyValueStore | undefined {
  try {
    return (globalThis as { localStorage?: KeyValueStore }).localStorage;
  } catch {
    // A browser that blocks storage for this page throws on access.
    return undefined;
  }
}

interface LockManager {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

const localQueues = new Map<string, Promise<unknown>>();

/**
 * Runs `task` while holding the lock `name`: across the tabs of the site through the Web Locks
 * API where the browser has it, else within this page. Message numbers and the usage book are
 * read and written under it, so two tabs never send the same number or lose a count.
 */
export async function withLock<T>(name: string, task: () => Promise<T>): Promise<T> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (locks !== undefined) {
    return locks.request(name, task);
  }
  const previous = localQueues.get(name) ?? Promise.resolve();
  const run = previous.then(task, task);
  const settled = run.then(
    () => undefined,
    () => undefined,
  );
  localQueues.set(name, settled);
  try {
    return await run;
  } finally {
    if (localQueues.get(name) === settled) localQueues.delete(name);
  }
}
