/* global window, document, fetch, AbortController, FormData, TextDecoder, URLSearchParams */

/**
 * Streams answers on the chat test page of wagtail_vector_index.
 *
 * On submit it posts the form to the stream endpoint (once per parameter
 * set: twice in compare mode) and reads the newline-delimited JSON answer as
 * it arrives. Model output is only ever written with `textContent` / text
 * nodes, so it is always shown as text, never parsed as HTML.
 *
 * No build step: the controller is registered on Wagtail's own Stimulus
 * application. The texts it writes come translated from the page (its
 * `strings` value, made by `js_strings()` in views/chat.py), with
 * `%(name)s` placeholders it fills in: no JavaScript catalogue is needed.
 *
 * @example
 * <form method="post" action="/admin/ai/chat/stream/"
 *   data-controller="wvi-chat"
 *   data-action="submit->wvi-chat#send"
 *   data-wvi-chat-reload-url-value="/admin/ai/chat/"
 *   data-wvi-chat-stream-url-value="/admin/ai/chat/stream/"
 *   data-wvi-chat-strings-value='{"stopped": "Stopped.", ...}'>
 *   ...
 *   <div data-wvi-chat-target="output" data-side="a" aria-live="polite"></div>
 * </form>
 */
window.wagtail.app.register(
  'wvi-chat',
  class extends window.StimulusModule.Controller {
    static targets = [
      'compareOnly',
      'error',
      'errorMessage',
      'output',
      'send',
      'stats',
      'stop',
    ];

    static values = {
      reloadUrl: String,
      streamUrl: String,
      strings: Object,
    };

    /**
     * The translated text `key`, its `%(name)s` placeholders replaced by
     * `values` (the key itself if the page did not provide the text).
     */
    text(key, values = {}) {
      const template = this.stringsValue[key] || key;
      return template.replace(/%\((\w+)\)s/g, (placeholder, name) =>
        name in values ? String(values[name]) : placeholder,
      );
    }

    connect() {
      this.requests = new Set();
      // The latest request of each side: an aborted one must not write there.
      this.current = {};
      this.toggleCompare();
    }

    disconnect() {
      this.stop();
    }

    /** The parameter sets to send: "a", plus "b" in compare mode. */
    get sides() {
      return this.compareField && this.compareField.checked ? ['a', 'b'] : ['a'];
    }

    get compareField() {
      return this.element.elements.namedItem('compare');
    }

    /** Show or hide (and disable) what belongs to the second parameter set. */
    toggleCompare() {
      const compare = this.sides.length > 1;
      this.compareOnlyTargets.forEach((element) => {
        element.hidden = !compare;
        if (element.tagName === 'FIELDSET') {
          // Disabled fields are neither validated nor submitted.
          element.disabled = !compare;
        }
      });
    }

    /** Reload the page for another site or backend, with its current values. */
    reload() {
      const form = this.element;
      const params = new URLSearchParams();
      const value = (name) => {
        const field = form.elements.namedItem(name);
        return field ? field.value : '';
      };
      params.set('site', value('site'));
      ['a-alias', 'b-alias'].forEach((name) => {
        if (value(name)) params.set(name, value(name));
      });
      if (this.sides.length > 1) params.set('compare', '1');
      const systemPrompt = value('system_prompt');
      const message = value('message');
      // Long prompts are not carried over: URLs have limits.
      if (systemPrompt.length + message.length <= 2000) {
        if (systemPrompt) params.set('system_prompt', systemPrompt);
        if (message) params.set('message', message);
      }
      window.location.assign(`${this.reloadUrlValue}?${params.toString()}`);
    }

    /** Submit handler: stream the answers (saving submits the form as usual). */
    send(event) {
      const submitter = event.submitter;
      if (submitter && submitter.hasAttribute('data-wvi-chat-native')) return;
      event.preventDefault();
      this.stop();
      this.sides.forEach((side) => this.stream(side));
    }

    /** Stop every answer being streamed (aborting the requests). */
    stop() {
      if (!this.requests) return;
      this.requests.forEach((request) => request.abort());
      this.requests.clear();
      this.updateButtons();
    }

    updateButtons() {
      if (this.hasStopTarget) this.stopTarget.disabled = this.requests.size === 0;
    }

    find(name, side) {
      return this[`${name}Targets`].find((element) => element.dataset.side === side);
    }

    async stream(side) {
      const output = this.find('output', side);
      const stats = this.find('stats', side);
      this.clear(side);
      output.setAttribute('aria-busy', 'true');

      const request = new AbortController();
      this.current[side] = request;
      this.requests.add(request);
      this.updateButtons();

      const data = new FormData(this.element);
      data.set('side', side);
      const token = data.get('csrfmiddlewaretoken');

      let finished = false;
      try {
        const response = await fetch(this.streamUrlValue, {
          method: 'POST',
          body: data,
          credentials: 'same-origin',
          headers: { 'X-CSRFToken': token, Accept: 'application/x-ndjson' },
          signal: request.signal,
        });
        const type = response.headers.get('Content-Type') || '';
        if (!type.startsWith('application/x-ndjson') || !response.body) {
          this.showError(side, this.text('refused', { status: response.status }));
          return;
        }
        finished = await this.read(side, response.body.getReader());
        if (!finished) this.showError(side, this.text('endedUnexpectedly'));
      } catch (error) {
        if (this.current[side] !== request) return;
        if (error.name === 'AbortError') {
          this.showNote(side, this.text('stopped'));
        } else {
          this.showError(side, this.text('requestFailed', { message: error.message }));
        }
      } finally {
        this.requests.delete(request);
        this.updateButtons();
        if (this.current[side] === request) {
          output.setAttribute('aria-busy', 'false');
          if (stats.childElementCount) stats.hidden = false;
        }
      }
    }

    /** Read ndjson lines; resolves true once a "done" or "error" line came. */
    async read(side, reader) {
      const decoder = new TextDecoder();
      let buffer = '';
      let finished = false;
      // eslint-disable-next-line no-constant-condition
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let newline = buffer.indexOf('\n');
        while (newline >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (line) finished = this.handle(side, JSON.parse(line)) || finished;
          newline = buffer.indexOf('\n');
        }
      }
      buffer += decoder.decode();
      if (buffer.trim()) finished = this.handle(side, JSON.parse(buffer)) || finished;
      return finished;
    }

    /** Apply one line; returns true for the last line of an answer. */
    handle(side, line) {
      if (line.type === 'part') {
        // Only the first choice is shown.
        if (line.index === 0) {
          this.find('output', side).append(document.createTextNode(line.content));
        }
        return false;
      }
      if (line.type === 'done') {
        this.showStats(side, line);
        return true;
      }
      if (line.type === 'error') {
        this.showError(side, line.message);
        return true;
      }
      return false;
    }

    clear(side) {
      this.find('output', side).textContent = '';
      const stats = this.find('stats', side);
      stats.textContent = '';
      stats.hidden = true;
      this.find('error', side).hidden = true;
      this.find('errorMessage', side).textContent = '';
    }

    showError(side, message) {
      this.find('errorMessage', side).textContent = message;
      this.find('error', side).hidden = false;
    }

    showNote(side, message) {
      this.addStat(side, this.text('status'), message);
    }

    addStat(side, term, description) {
      const stats = this.find('stats', side);
      const row = document.createElement('div');
      const dt = document.createElement('dt');
      const dd = document.createElement('dd');
      dt.textContent = term;
      dd.textContent = description;
      row.append(dt, dd);
      stats.append(row);
      stats.hidden = false;
    }

    showStats(side, line) {
      const seconds = (value) =>
        value === null || value === undefined
          ? '–'
          : this.text('seconds', { seconds: value.toFixed(2) });
      const usage = line.usage || {};
      const count = (value) => (value === null || value === undefined ? '?' : value);
      this.addStat(side, this.text('backend'), line.backend || line.model);
      this.addStat(
        side,
        this.text('timeToFirstToken'),
        seconds(line.time_to_first_token),
      );
      this.addStat(side, this.text('totalTime'), seconds(line.total_time));
      this.addStat(
        side,
        this.text('tokens'),
        this.text('tokenCounts', {
          prompt: count(usage.prompt_tokens),
          completion: count(usage.completion_tokens),
          total: count(usage.total_tokens),
        }),
      );
      this.addStat(
        side,
        this.text('cost'),
        line.cost === null || line.cost === undefined
          ? this.text('unknown')
          : `$${Number(line.cost).toFixed(6)}`,
      );
      const parameters = Object.entries(line.parameters || {}).map(
        ([name, parameter]) =>
          `${name} = ${JSON.stringify(parameter.value)} (${parameter.source})`,
      );
      if (parameters.length) {
        this.addStat(side, this.text('parameters'), parameters.join('; '));
      }
    }
  },
);
