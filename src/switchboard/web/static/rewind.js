// Rewind: the board page's timeline scrubber. A range from the oldest seq the board can be
// rewound to (`GET /api/boards/{slug}?at=0`, or its 410's `History-From`) to the live seq.
// Dragging back (debounced) fetches `?at=` and hands that board to `show`; the live
// subscription keeps applying events underneath (`moved` only stretches the range), so the
// "live" button, or dragging to the end, hands back to `live`, which draws the live
// BoardState as it is now: no gap.

const DEBOUNCE_MS = 150;

export class Rewind {
  /**
   * @param {object} options
   * @param {string} options.slug the board
   * @param {() => object} options.headers the request headers (the page's credential)
   * @param {(board: object, time: string) => void} options.show draw a past board
   * @param {() => void} options.live draw the live board again
   */
  constructor({ slug, headers, show, live }) {
    Object.assign(this, { slug, headers, show, live });
    this.bar = document.getElementById("rewind");
    this.range = document.getElementById("rewind-range");
    this.label = document.getElementById("rewind-label");
    this.button = document.getElementById("rewind-live");
    this.viewing = null; // the seq shown while in the past; null: live
    this.head = 0; // the live board's seq
    this.asked = 0; // the latest request: older answers are dropped
    this.timer = null;
    this.range.addEventListener("input", () => this.scrubbed());
    this.button.addEventListener("click", () => this.toLive());
  }

  /** The board is live at `seq`: learn how far back it goes, and show the scrubber. */
  async start(seq) {
    this.head = seq;
    const response = await this.fetchAt(0);
    if (response.status === 200) this.range.min = "0";
    else if (response.headers.get("History-From")) this.range.min = response.headers.get("History-From");
    else return; // not readable, or no history at all: no scrubber
    this.range.max = String(this.head); // `moved` may have run meanwhile
    this.range.value = String(this.head);
    this.bar.hidden = false;
    this.say();
  }

  /** The live board reached `seq`. Live, the thumb follows it; in the past, it stays put. */
  moved(seq) {
    this.head = seq;
    this.range.max = String(seq);
    if (this.viewing === null) this.range.value = String(seq);
    this.say();
  }

  scrubbed() {
    clearTimeout(this.timer);
    const seq = Number(this.range.value);
    if (seq >= this.head) return this.toLive();
    this.timer = setTimeout(() => this.goTo(seq), DEBOUNCE_MS);
  }

  fetchAt(seq) {
    const url = `/api/boards/${encodeURIComponent(this.slug)}?at=${seq}`;
    return fetch(url, { headers: this.headers() });
  }

  /** Show the board at `seq`; a seq trimmed meanwhile moves to the oldest one kept. */
  async goTo(seq) {
    const asked = ++this.asked;
    let response = await this.fetchAt(seq);
    const oldest = response.headers.get("History-From");
    if (response.status === 410 && oldest && asked === this.asked) {
      this.range.min = oldest;
      this.range.value = oldest;
      response = await this.fetchAt(Number(oldest));
    }
    if (asked !== this.asked) return; // the viewer moved on (or went live) meanwhile
    if (!response.ok) {
      this.say(`seq ${seq} could not be read (${response.status})`);
      return;
    }
    const board = await response.json();
    if (asked !== this.asked) return;
    this.viewing = board.seq;
    this.show(board, response.headers.get("Seq-Time"));
    this.say(null, response.headers.get("Seq-Time"));
  }

  toLive() {
    clearTimeout(this.timer);
    this.asked++;
    const was = this.viewing;
    this.viewing = null;
    this.range.value = String(this.head);
    this.say();
    if (was !== null) this.live();
  }

  /** The line beside the scrubber, and `data-viewing` on the bar for styles and tests. */
  say(problem = null, time = null) {
    this.button.disabled = this.viewing === null;
    this.bar.classList.toggle("past", this.viewing !== null);
    if (this.viewing === null) {
      delete this.bar.dataset.viewing;
      this.label.textContent = problem || `live · seq ${this.head}`;
      return;
    }
    this.bar.dataset.viewing = String(this.viewing);
    if (time) this.time = new Date(time);
    const when = this.time ? `, as of ${this.time.toLocaleString()}` : "";
    this.label.textContent = problem || `viewing seq ${this.viewing} of ${this.head}${when}`;
  }
}
