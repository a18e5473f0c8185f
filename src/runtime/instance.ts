import { conflict } from '../api/errors.js';
import type { InstanceState } from '../graph/model.js';

/**
 * A running (or stoppable) graph: what GraphInstanceActivate starts and Deactivate stops.
 * `start` resolves once every node is up (sinks first, sources last); `stop` drains (open clips are
 * finalised, events flushed) and resolves once every child process is reaped.
 */
export interface GraphRuntime {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The graph instance state machine (lva-spec §1.5):
 *
 *   Inactive --activate--> Activating --ok--> Active --deactivate--> Deactivating --drained--> Inactive
 *                               \--failure--> Inactive
 *
 * Transitions are taken synchronously when a command is accepted, so a concurrent Delete/Set sees the
 * new state at once. Activate while Activating joins the running activation (so does Deactivate
 * while Deactivating); the opposite verb in a transitional state is 409 OperationNotAllowedInState.
 */
export class InstanceLifecycle {
  private _state: InstanceState = 'Inactive';
  private pending?: Promise<void>;
  private runtime?: GraphRuntime;

  constructor(
    readonly name: string,
    private readonly onStateChange: (state: InstanceState) => void = () => {},
  ) {}

  get state(): InstanceState {
    return this._state;
  }

  /** `build` creates the runtime (validating live resources); it runs only on a real Inactive→Active. */
  activate(build: () => GraphRuntime | Promise<GraphRuntime>): Promise<void> {
    switch (this._state) {
      case 'Active':
        return Promise.resolve();
      case 'Activating':
        return this.pending!;
      case 'Deactivating':
        return Promise.reject(conflict('OperationNotAllowedInState',
          `Graph instance '${this.name}' is deactivating; activate it once it is Inactive.`));
      case 'Inactive':
        break;
    }
    this.set('Activating');
    const run = (async () => {
      let runtime: GraphRuntime | undefined;
      try {
        runtime = await build();
        await runtime.start();
        this.runtime = runtime;
        this.set('Active');
      } catch (err) {
        if (runtime) await runtime.stop().catch(() => {});
        this.set('Inactive');
        throw err;
      } finally {
        this.pending = undefined;
      }
    })();
    this.pending = run;
    return run;
  }

  deactivate(): Promise<void> {
    switch (this._state) {
      case 'Inactive':
        return Promise.resolve();
      case 'Deactivating':
        return this.pending!;
      case 'Activating':
        return Promise.reject(conflict('OperationNotAllowedInState',
          `Graph instance '${this.name}' is activating; deactivate it once it is Active.`));
      case 'Active':
        break;
    }
    this.set('Deactivating');
    const run = (async () => {
      try {
        await this.runtime?.stop();
      } finally {
        // Even a failed drain ends Inactive: every process was killed by stop(), nothing runs anymore.
        this.runtime = undefined;
        this.pending = undefined;
        this.set('Inactive');
      }
    })();
    this.pending = run;
    return run;
  }

  /** Settles any transition in progress (used at shutdown). */
  async settle(): Promise<void> {
    await this.pending?.catch(() => {});
  }

  private set(state: InstanceState): void {
    this._state = state;
    this.onStateChange(state);
  }
}
