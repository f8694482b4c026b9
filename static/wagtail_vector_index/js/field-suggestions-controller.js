/* global window, document, fetch, FormData, Event */

/**
 * The "Suggest" button of wagtail_vector_index's AIFieldPanel.
 *
 * It posts the edit form as it stands (unsaved changes included) to the
 * field suggestions endpoint, shows the alternatives beside the field, each
 * with a word-level diff against the current value, and changes the field
 * only when the editor clicks "Use this" (firing `input` and `change` so
 * that Wagtail knows the form changed). Model output is only ever written
 * with `textContent`, never parsed as HTML. Errors (permission, rate limit,
 * budget, provider) are shown in place and leave the field as it was.
 *
 * No build step: registered on Wagtail's own Stimulus application.
 *
 * @example
 * <div data-controller="wvi-field-suggestions"
 *   data-wvi-field-suggestions-url-value="/admin/ai/editor/field-suggestions/"
 *   data-wvi-field-suggestions-input-value="id_title"
 *   data-wvi-field-suggestions-params-value='{"wvi-field": "title", ...}'
 *   data-wvi-field-suggestions-strings-value='{"use": "Use this", ...}'>
 *   <input id="id_title" name="title">
 *   <button type="button" data-action="wvi-field-suggestions#suggest"
 *     data-wvi-field-suggestions-target="suggest">Suggest</button>
 *   <span data-wvi-field-suggestions-target="status"></span>
 *   <div data-wvi-field-suggestions-target="message" hidden></div>
 *   <div data-wvi-field-suggestions-target="results" hidden></div>
 * </div>
 */
window.wagtail.app.register(
  'wvi-field-suggestions',
  class extends window.StimulusModule.Controller {
    static targets = ['message', 'results', 'status', 'suggest'];

    static values = {
      input: String,
      params: Object,
      strings: Object,
      url: String,
    };

    text(key, values = {}) {
      const template = this.stringsValue[key] || key;
      return template.replace(/%\((\w+)\)s/g, (placeholder, name) =>
        name in values ? String(values[name]) : placeholder,
      );
    }

    get input() {
      return document.getElementById(this.inputValue);
    }

    disconnect() {
      if (this.request) this.request.abort();
    }

    /** Ask for alternatives (the "Suggest" and "Try again" buttons). */
    async suggest() {
      const input = this.input;
      if (!input || !input.form) return;
      if (this.request) this.request.abort();
      const request = new window.AbortController();
      this.request = request;
      this.clear();
      this.setBusy(true);

      const data = new FormData(input.form);
      Object.entries(this.paramsValue).forEach(([name, value]) => data.set(name, value));
      const token = data.get('csrfmiddlewaretoken') || '';
      try {
        const response = await fetch(this.urlValue, {
          method: 'POST',
          body: data,
          credentials: 'same-origin',
          headers: { 'X-CSRFToken': token, Accept: 'application/json' },
          signal: request.signal,
        });
        let payload = null;
        try {
          payload = await response.json();
        } catch (error) {
          payload = null;
        }
        if (this.request !== request) return;
        if (!payload || typeof payload !== 'object') {
          this.showMessage(this.text('refused', { status: response.status }));
        } else if (!payload.ok) {
          this.showMessage(
            payload.message || this.text('refused', { status: response.status }),
          );
        } else {
          this.showAlternatives(payload.alternatives || [], input.value);
        }
      } catch (error) {
        if (error.name === 'AbortError' || this.request !== request) return;
        this.showMessage(this.text('requestFailed', { message: error.message }));
      } finally {
        if (this.request === request) {
          this.request = null;
          this.setBusy(false);
        }
      }
    }

    /** Close the alternatives without changing anything. */
    cancel() {
      if (this.request) this.request.abort();
      this.request = null;
      this.setBusy(false);
      this.clear();
      if (this.hasSuggestTarget) this.suggestTarget.focus();
    }

    /** Put the alternative of the clicked button into the field. */
    use(event) {
      const index = Number(event.currentTarget.dataset.index);
      const value = (this.alternatives || [])[index];
      const input = this.input;
      if (value === undefined || !input) return;
      input.value = value;
      input.dispatchEvent(new Event('input', { bubbles: true }));
      input.dispatchEvent(new Event('change', { bubbles: true }));
      this.clear();
      this.statusTarget.textContent = this.text('applied');
      input.focus();
    }

    setBusy(busy) {
      this.element.setAttribute('aria-busy', busy ? 'true' : 'false');
      if (this.hasSuggestTarget) this.suggestTarget.disabled = busy;
      this.statusTarget.textContent = busy ? this.text('suggesting') : '';
    }

    clear() {
      this.alternatives = [];
      this.resultsTarget.replaceChildren();
      this.resultsTarget.hidden = true;
      this.messageTarget.textContent = '';
      this.messageTarget.hidden = true;
      this.statusTarget.textContent = '';
    }

    showMessage(message) {
      this.messageTarget.textContent = message;
      this.messageTarget.hidden = false;
    }

    button(label, action, icon) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'button button-small button-secondary';
      button.setAttribute('data-action', `wvi-field-suggestions#${action}`);
      button.textContent = label;
      if (icon) button.dataset.icon = icon;
      return button;
    }

    showAlternatives(alternatives, current) {
      this.alternatives = alternatives;
      const results = this.resultsTarget;
      results.replaceChildren();

      const intro = document.createElement('p');
      intro.className = 'w-help-text w-mb-2 w-mt-1';
      intro.textContent = this.text('intro');

      const list = document.createElement('ol');
      list.className = 'w-list-none w-p-0 w-m-0 w-flex w-flex-col w-gap-2';
      alternatives.forEach((alternative, index) => {
        const item = document.createElement('li');
        item.className =
          'wvi-field-suggestion w-flex w-items-start w-gap-3 w-p-2 w-rounded-sm w-border w-border-border-furniture';
        item.dataset.alternative = alternative;

        const diff = document.createElement('div');
        diff.className = 'wvi-field-suggestion__diff w-flex-1';
        this.renderDiff(diff, current, alternative);

        const use = this.button(this.text('use'), 'use');
        use.dataset.index = String(index);
        use.setAttribute('aria-label', this.text('useLabel', { number: index + 1 }));
        item.append(diff, use);
        list.append(item);
      });

      const actions = document.createElement('div');
      actions.className = 'w-flex w-gap-2 w-mt-3';
      actions.append(
        this.button(this.text('tryAgain'), 'suggest'),
        this.button(this.text('cancel'), 'cancel'),
      );

      results.append(intro, list, actions);
      results.hidden = false;
    }

    /**
     * Show `after` as a word-level diff against `before`: removed words in
     * <del>, added ones in <ins>, all written as text.
     */
    renderDiff(container, before, after) {
      if ((before || '').trim() === after.trim()) {
        container.textContent = after;
        const note = document.createElement('span');
        note.className = 'w-help-text';
        note.textContent = ` (${this.text('unchanged')})`;
        container.append(note);
        return;
      }
      const a = (before || '').split(/(\s+)/).filter((token) => token !== '');
      const b = after.split(/(\s+)/).filter((token) => token !== '');
      // Longest common subsequence of the tokens (fields are short).
      const rows = a.length + 1;
      const cols = b.length + 1;
      const table = new Array(rows * cols).fill(0);
      for (let i = a.length - 1; i >= 0; i -= 1) {
        for (let j = b.length - 1; j >= 0; j -= 1) {
          table[i * cols + j] =
            a[i] === b[j]
              ? table[(i + 1) * cols + j + 1] + 1
              : Math.max(table[(i + 1) * cols + j], table[i * cols + j + 1]);
        }
      }
      const parts = [];
      const push = (kind, token) => {
        const last = parts[parts.length - 1];
        if (last && last.kind === kind) last.text += token;
        else parts.push({ kind, text: token });
      };
      let i = 0;
      let j = 0;
      while (i < a.length && j < b.length) {
        if (a[i] === b[j]) {
          push('same', a[i]);
          i += 1;
          j += 1;
        } else if (table[(i + 1) * cols + j] >= table[i * cols + j + 1]) {
          push('del', a[i]);
          i += 1;
        } else {
          push('ins', b[j]);
          j += 1;
        }
      }
      while (i < a.length) push('del', a[(i += 1) - 1]);
      while (j < b.length) push('ins', b[(j += 1) - 1]);
      parts.forEach((part, index) => {
        // A removal right before an addition: a space keeps them apart.
        if (part.kind === 'ins' && index > 0 && parts[index - 1].kind === 'del') {
          container.append(document.createTextNode(' '));
        }
        if (part.kind === 'same') {
          container.append(document.createTextNode(part.text));
        } else {
          const element = document.createElement(part.kind);
          element.className =
            part.kind === 'del' ? 'w-bg-critical-50' : 'w-bg-positive-50';
          element.textContent = part.text;
          container.append(element);
        }
      });
    }
  },
);
