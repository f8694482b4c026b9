/* global window, document, fetch, FormData */

/**
 * "Describe with AI" beside the description field of Wagtail's image edit
 * view (wagtail_vector_index).
 *
 * Loaded on editor pages by the `insert_editor_js` hook with a JSON script
 * `#wvi-image-description-config` (URLs with a placeholder id, translated
 * texts). On the image edit view only (its URL is compared with
 * `editUrl`), it adds an element with this controller after the description
 * field. The controller asks the status URL whether this user may describe
 * this image (permission, image permission, an alias that takes images) and
 * only then shows its button. Clicking POSTs (with the page's CSRF token) to
 * the describe URL; the suggestion is shown beside the current description
 * with what would change, and only "Use this" fills the field. Errors are
 * shown in place and change nothing. Model output is only ever written with
 * `textContent`, never parsed as HTML.
 *
 * @example
 * <div data-controller="wvi-image-description"
 *   data-wvi-image-description-status-url-value="/admin/ai/editor/images/3/describe/status/"
 *   data-wvi-image-description-field-value="id_description"
 *   data-wvi-image-description-strings-value='{"button": "Describe with AI", ...}'>
 * </div>
 */
window.wagtail.app.register(
  'wvi-image-description',
  class extends window.StimulusModule.Controller {
    static values = {
      field: String,
      statusUrl: String,
      strings: Object,
    };

    /** The translated text `key`, its `%(name)s` placeholders filled in. */
    text(key, values = {}) {
      const template = this.stringsValue[key] || key;
      return template.replace(/%\((\w+)\)s/g, (placeholder, name) =>
        name in values ? String(values[name]) : placeholder,
      );
    }

    get field() {
      return document.getElementById(this.fieldValue);
    }

    /** An element with Wagtail admin classes and text set as text. */
    make(tag, className, text) {
      const element = document.createElement(tag);
      if (className) element.className = className;
      if (text !== undefined) element.textContent = text;
      return element;
    }

    button(label, action, primary = false) {
      const button = this.make(
        'button',
        primary ? 'button button-small' : 'button button-small button-secondary',
        label,
      );
      button.type = 'button';
      button.dataset.action = `wvi-image-description#${action}`;
      return button;
    }

    connect() {
      this.describeButton = this.button(this.text('button'), 'describe');
      this.describeButton.hidden = true;
      this.describeButton.classList.add('wvi-image-description__describe');
      this.status = this.make('p', 'w-help-text wvi-image-description__status');
      this.status.setAttribute('aria-live', 'polite');
      this.status.hidden = true;
      this.panel = this.make('div', 'wvi-image-description__panel w-mt-2');
      this.panel.hidden = true;
      this.element.append(this.describeButton, this.status, this.panel);
      this.check();
    }

    /** Show the button only if the server says this user may use it here. */
    async check() {
      let answer;
      try {
        const response = await fetch(this.statusUrlValue, {
          credentials: 'same-origin',
          headers: { Accept: 'application/json' },
        });
        if (!response.ok) return;
        answer = await response.json();
      } catch (error) {
        return;
      }
      if (answer && answer.ok && answer.available) {
        this.describeUrl = answer.url;
        this.describeButton.hidden = false;
      }
    }

    get csrfToken() {
      const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
      if (input) return input.value;
      const config = window.wagtailConfig || {};
      return config.CSRF_TOKEN || '';
    }

    showStatus(message, isError = false) {
      this.status.textContent = message;
      this.status.hidden = !message;
      this.status.classList.toggle('error-message', isError);
      this.status.setAttribute('role', isError ? 'alert' : 'status');
    }

    async describe() {
      if (!this.describeUrl || this.busy) return;
      this.busy = true;
      this.describeButton.disabled = true;
      this.panel.hidden = true;
      this.showStatus(this.text('working'));
      const body = new FormData();
      body.append('csrfmiddlewaretoken', this.csrfToken);
      const title = document.getElementById('id_title');
      if (title) body.append('title', title.value);
      let answer;
      try {
        const response = await fetch(this.describeUrl, {
          method: 'POST',
          body,
          credentials: 'same-origin',
          headers: { Accept: 'application/json', 'X-CSRFToken': this.csrfToken },
        });
        answer = await response.json();
      } catch (error) {
        answer = { ok: false, message: this.text('network') };
      } finally {
        this.busy = false;
        this.describeButton.disabled = false;
      }
      if (!answer || !answer.ok) {
        const message = (answer && answer.message) || this.text('network');
        this.showStatus(this.text('failed', { message }), true);
        return;
      }
      this.showStatus('');
      this.suggestion = answer.description;
      this.showSuggestion(answer);
    }

    /** The current value and the suggestion, with the words that change. */
    showSuggestion(answer) {
      const field = this.field;
      const current = field ? field.value : answer.current || '';
      this.panel.replaceChildren();
      const list = this.make('dl', 'wvi-image-description__comparison');
      list.append(this.make('dt', '', this.text('current')));
      const before = this.make('dd', 'wvi-image-description__current');
      list.append(before);
      list.append(this.make('dt', '', this.text('suggestion')));
      const after = this.make('dd', 'wvi-image-description__suggestion');
      list.append(after);
      if (current) {
        this.diff(current, answer.description, before, after);
      } else {
        before.append(this.make('em', '', this.text('empty')));
        after.append(this.make('ins', '', answer.description));
      }
      this.panel.append(list);
      if (answer.offline) {
        this.panel.append(this.make('p', 'w-help-text', this.text('offline')));
      }
      const actions = this.make(
        'div',
        'wvi-image-description__actions w-flex w-gap-2 w-mt-2',
      );
      actions.append(
        this.button(this.text('use'), 'use', true),
        this.button(this.text('again'), 'describe'),
        this.button(this.text('cancel'), 'cancel'),
      );
      this.panel.append(actions);
      this.panel.hidden = false;
    }

    /**
     * Word-level difference of `old` and `new`: removed words in <del>
     * in `before`, added ones in <ins> in `after` (a longest common
     * subsequence; descriptions are short).
     */
    diff(oldText, newText, before, after) {
      const a = oldText.split(/(\s+)/);
      const b = newText.split(/(\s+)/);
      const lengths = Array.from({ length: a.length + 1 }, () =>
        new Array(b.length + 1).fill(0),
      );
      for (let i = a.length - 1; i >= 0; i -= 1) {
        for (let j = b.length - 1; j >= 0; j -= 1) {
          lengths[i][j] =
            a[i] === b[j]
              ? lengths[i + 1][j + 1] + 1
              : Math.max(lengths[i + 1][j], lengths[i][j + 1]);
        }
      }
      let i = 0;
      let j = 0;
      while (i < a.length || j < b.length) {
        if (i < a.length && j < b.length && a[i] === b[j]) {
          before.append(document.createTextNode(a[i]));
          after.append(document.createTextNode(b[j]));
          i += 1;
          j += 1;
        } else if (j < b.length && (i >= a.length || lengths[i][j + 1] >= lengths[i + 1][j])) {
          after.append(this.make('ins', '', b[j]));
          j += 1;
        } else {
          before.append(this.make('del', '', a[i]));
          i += 1;
        }
      }
    }

    /** Only here does the field change: the editor chose the suggestion. */
    use() {
      const field = this.field;
      if (field && typeof this.suggestion === 'string') {
        field.value = this.suggestion;
        field.dispatchEvent(new Event('input', { bubbles: true }));
        field.dispatchEvent(new Event('change', { bubbles: true }));
        field.focus();
      }
      this.cancel();
    }

    cancel() {
      this.panel.hidden = true;
      this.panel.replaceChildren();
      this.showStatus('');
    }
  },
);

/**
 * On the image edit view, put the controller after the description field.
 */
(() => {
  const script = document.getElementById('wvi-image-description-config');
  if (!script) return;
  const config = JSON.parse(script.textContent);
  const [prefix, suffix] = config.editUrl.split(config.placeholder);
  const path = window.location.pathname;
  if (!path.startsWith(prefix) || !path.endsWith(suffix)) return;
  const id = path.slice(prefix.length, path.length - suffix.length);
  if (!/^\d+$/.test(id)) return;
  const field = document.getElementById('id_description');
  if (!field || document.querySelector('[data-controller~="wvi-image-description"]')) {
    return;
  }
  const holder = document.createElement('div');
  holder.className = 'wvi-image-description';
  holder.style.marginTop = '0.5rem';
  holder.dataset.controller = 'wvi-image-description';
  holder.dataset.wviImageDescriptionFieldValue = field.id;
  holder.dataset.wviImageDescriptionStatusUrlValue = config.statusUrl.replace(
    config.placeholder,
    id,
  );
  holder.dataset.wviImageDescriptionStringsValue = JSON.stringify(config.strings);
  const input = field.closest('[data-field-input]') || field;
  input.after(holder);
})();
