// herald.d.ts - types of herald.js, the JavaScript client of herald's WebSocket protocol.

export type Channel = 'trade' | 'account' | 'position' | 'risk' | 'system';

/** A notification as the gateway sends it (protocol.md 6). */
export interface Notification {
  type: 'notification';
  seq: number;
  message_id: string;
  message_type: string;
  channel: Channel | string;
  /** The user, or "*" for a broadcast (broadcasts have their own sequence). */
  user_id: string;
  priority: 0 | 1 | 2 | 3;
  /** Nanoseconds since the epoch (a Number: rounded beyond 2^53, as JSON.parse rounds it). */
  timestamp: number;
  source?: string;
  payload: Record<string, unknown>;
  /** protocol.md 14: an ack_required notification sent again because no ack came. */
  redelivery?: boolean;
}

export interface Range {
  from: number;
  to: number;
}

export type State = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StateEvent {
  state: State;
  /** Reconnect attempts since the last welcome. */
  attempt?: number;
  /** reconnecting: the backoff delay chosen before the next attempt. */
  delayMs?: number;
  /** reconnecting: the close code (4001 token expired, 4008 slow consumer, ...; 1006 lost). */
  code?: number;
  reason?: string;
  /** open: the gateway id and session id of the welcome. */
  gateway?: number;
  sessionId?: string;
}

export interface ClientError {
  /** The server's code (unknown_op, refresh_denied, ...) or the client's (bad_frame,
   * token_unavailable, connect_failed, bad_url, storage, handler_threw). */
  code: string;
  message: string;
  cause?: unknown;
}

/** Same shape as window.localStorage. */
export interface StorageAdapter {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface Backoff {
  /** Delay before the first reconnect (default 500). */
  initialMs: number;
  /** Largest delay (default 30000). */
  maxMs: number;
  /** Growth per failed attempt (default 2). */
  factor: number;
  /** Up to this share of the delay is taken off at random (default 0.5: [d/2, d]). */
  jitter: number;
}

export interface HeraldOptions {
  /** A JWT (sub = user). Either token or getToken is required. */
  token?: string;
  /** Called for each connection and before the token's exp (refresh); may be async. */
  getToken?: () => string | Promise<string>;
  /** Channels to receive (none = every channel). */
  channels?: Channel[] | string[];
  /** Resume after this seq on the first connection (overrides a stored resume point if higher). */
  since?: number;
  /** Persist the resume point (e.g. localStorage); none by default. */
  storage?: StorageAdapter | null;
  /** Subprotocol herald.json (default) or herald.msgpack. */
  protocol?: 'json' | 'msgpack';
  /** A WebSocket constructor (default globalThis.WebSocket). */
  WebSocket?: typeof WebSocket | (new (url: string, protocols?: string[]) => WebSocket);
  backoff?: Partial<Backoff>;
  /** Refresh the token this many seconds before exp (at most half its remaining life; default 30). */
  refreshBeforeS?: number;
  /** Send {"op":"ping"} after this much silence; 0 = never (default 25000). */
  pingIntervalMs?: number;
  /** Reconnect when nothing arrives this long after a ping (default 10000). */
  pongTimeoutMs?: number;
  /** A seq missing below delivered ones this long is given up (filtered or lost; default 3000). */
  holeMs?: number;
  /** protocol.md 14: connect with acks=1 and answer {"op":"ack","seq":S} after the handler returns. */
  acks?: boolean;
  /** Types acknowledged when acks is on (default margin_call, risk_alert). */
  ackTypes?: string[];
  /** Write the resume point at most this often (default 200). */
  persistEveryMs?: number;
}

export interface ClientStats {
  connects: number;
  delivered: number;
  /** Notifications dropped because their seq was already delivered. */
  duplicates: number;
  gaps: number;
  resumes: number;
}

export interface EventMap {
  notification: Notification;
  gap: Range;
  resumed: Range;
  conflated: { seqs: number[] };
  state: StateEvent;
  error: ClientError;
  welcome: { type: 'welcome'; session_id: string; user_id: string; gateway: number };
  subscribed: { channels: string[] };
  refreshed: { exp: number };
  pong: { type: 'pong' };
}

export class HeraldClient {
  constructor(url: string, opts: HeraldOptions);
  readonly url: string;
  readonly state: State;
  readonly userId: string | null;
  readonly sessionId: string | null;
  readonly gateway: number | null;
  /** exp of the token in use (seconds), when it has one. */
  readonly exp: number | null;
  readonly stats: ClientStats;
  /** The since a reconnect would send now. */
  readonly lastSeq: number;
  /** Add a handler (a notification handler may return a promise: with acks, the ack waits
   * for it). Returns a function that removes it. */
  on<K extends keyof EventMap>(event: K, fn: (ev: EventMap[K], client: HeraldClient) => unknown): () => void;
  off<K extends keyof EventMap>(event: K, fn: (ev: EventMap[K], client: HeraldClient) => unknown): void;
  subscribe(channels: string[]): void;
  unsubscribe(channels: string[]): void;
  close(): void;
}

export class SeqTracker {
  constructor(opts?: { holeMs?: number; now?: () => number });
  w: number | null;
  seen(seq: number): boolean;
  mark(seq: number): void;
  skipRange(from: number, to: number): void;
  resumePoint(): number;
  toJSON(): { w: number | null; a: number[] };
  load(state: { w?: number | null; a?: number[] }): void;
}

export const DEFAULTS: Readonly<Required<Omit<HeraldOptions, 'token' | 'getToken' | 'channels' | 'since' | 'storage' | 'WebSocket'>>>;
export function msgpackEncode(value: unknown): Uint8Array;
export function msgpackDecode(bytes: Uint8Array | ArrayBuffer): unknown;
export function memoryStorage(): StorageAdapter & { removeItem(key: string): void };
export function tokenClaims(token: string): Record<string, unknown> | null;
export function backoffDelay(attempt: number, backoff: Backoff, random?: () => number): number;
export default HeraldClient;
