// Live mode: re-fetch every 15 seconds, and take the requests the server pushes (SSE) as they
// finish. Paused while the browser tab is hidden; one click on Stop ends it.

import { api } from "./api.js";

export const LIVE_INTERVAL_MS = 15_000;

export class Live {
  /** `tab` gives: name, tick() (the 15-second refresh) and push(row) (one pushed request). */
  constructor(tab, onChange) {
    this.tab = tab;
    this.onChange = onChange;
    this.on = false;
    this.timer = null;
    this.source = null;
    this.lastTick = 0;
    this.visibility = () => this.visibilityChanged();
  }

  /** `now`: fetch at once (a click on Live), not at the first 15-second tick. The tab opened with
   * ?live=1 passes false: its first load is already under way. */
  start({ now = false } = {}) {
    if (this.on) return;
    this.on = true;
    document.addEventListener("visibilitychange", this.visibility);
    if (!document.hidden) this.resume(now);
    this.onChange(true);
  }

  stop() {
    if (!this.on) return;
    this.on = false;
    document.removeEventListener("visibilitychange", this.visibility);
    this.pause();
    this.onChange(false);
  }

  toggle() {
    if (this.on) this.stop();
    else this.start({ now: true });
  }

  get paused() {
    return this.on && this.timer === null;
  }

  resume(catchUp) {
    if (this.timer === null) {
      this.timer = setInterval(() => this.tick(), LIVE_INTERVAL_MS);
    }
    this.connect();
    // Back from a hidden tab: fetch what happened meanwhile, now rather than in 15 s.
    if (catchUp) this.tick();
  }

  pause() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  visibilityChanged() {
    if (!this.on) return;
    if (document.hidden) this.pause();
    else this.resume(true);
    this.onChange(true);
  }

  connect() {
    if (this.source) return;
    const source = new EventSource(api.eventsUrl(this.tab.name));
    let dropped = false;
    source.onmessage = (event) => {
      let row;
      try {
        row = JSON.parse(event.data);
      } catch {
        return;
      }
      this.tab.push(row);
    };
    source.onerror = () => {
      dropped = true; // EventSource reconnects by itself
    };
    source.onopen = () => {
      if (dropped) this.tick(); // fill the gap the broken connection left
      dropped = false;
    };
    this.source = source;
  }

  tick() {
    if (!this.on || document.hidden) return;
    this.lastTick = Date.now();
    this.tab.tick();
  }

  destroy() {
    this.stop();
  }
}
