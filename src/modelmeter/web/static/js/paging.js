// Where the request log is in its pages: the keyset cursor of each page seen so far. Every page
// turn is a browser-history entry (?page=N&cursor=C), so Back goes to the page seen before and
// a reload or a shared link opens the same page. The stack of cursors rides in history.state.

const MAX_PAGE = 100_000; // a link naming a page past this opens the first one

export class Paging {
  constructor() {
    this.cursors = [null]; // cursors[i]: the cursor of page i + 1; undefined where not known
  }

  get index() {
    return this.cursors.length - 1;
  }

  get cursor() {
    return this.cursors[this.index];
  }

  reset() {
    this.cursors = [null];
  }

  /** The page the URL names (`page`, `cursor`), with the earlier cursors history remembers. */
  restore(params, state = history.state) {
    const page = Number.parseInt(params.get("page") || "1", 10);
    const cursor = params.get("cursor");
    if (!(page > 1) || page > MAX_PAGE || !cursor) {
      this.reset();
      return;
    }
    const known = state && Array.isArray(state.cursors) ? state.cursors : null;
    if (known && known.length === page && known[page - 1] === cursor) {
      this.cursors = known.map((c, i) => (i === 0 ? null : c ?? undefined));
    } else {
      this.cursors = Array.from({ length: page }, (_, i) => (i === 0 ? null : undefined));
      this.cursors[page - 1] = cursor;
    }
  }

  /** True when the URL names another page than this one. */
  differs(params) {
    const page = Number.parseInt(params.get("page") || "1", 10);
    const at = page > 1 ? page : 1;
    return at !== this.index + 1 || (at > 1 && params.get("cursor") !== this.cursor);
  }

  /**
   * The URL and history state of the next (+1) or previous (-1) page, or null if there is none.
   * Going back past a page whose cursor is not known (a shared link) goes to the first page.
   */
  turn(direction, nextCursor, loc = window.location) {
    let cursors = this.cursors.slice();
    if (direction > 0 && nextCursor) cursors.push(nextCursor);
    else if (direction < 0 && cursors.length > 1) cursors.pop();
    else return null;
    if (cursors[cursors.length - 1] === undefined) cursors = [null];
    const q = new URLSearchParams(loc.search);
    if (cursors.length > 1) {
      q.set("page", String(cursors.length));
      q.set("cursor", cursors[cursors.length - 1]);
    } else {
      q.delete("page");
      q.delete("cursor");
    }
    const search = q.toString();
    return { url: `${loc.pathname}${search ? `?${search}` : ""}`, state: { cursors } };
  }

  /** `page` and `cursor` for a URL of this page (none on the first). */
  writeTo(q) {
    if (this.index > 0 && this.cursor) {
      q.set("page", String(this.index + 1));
      q.set("cursor", this.cursor);
    }
  }
}
