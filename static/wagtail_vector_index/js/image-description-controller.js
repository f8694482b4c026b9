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
 * `textContent`, never parsed as HTML. Uses `window.wagtailVectorIndex`
 * (editor-common.js, loaded before it).
 *
 * @example
 * <div data-controller="wvi-image-description"
 *   data-wvi-image-description-status-url-value="/admin/ai/editor/images/3/describe/status/"
 *   data-wvi-image-description-field-value="id_description"
 *   data-wvi-image-description-strings-value='{"button": "Describe with AI", ...}'>
 * </div>
 */
(() => {
  const wvi = window.wagtailVectorIndex;

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
        return wvi.format(this.stringsValue[key] || key, values);
      }

      get field() {
        return document.getElementById(this.fieldValue);
      }

      /** An element with Wagtail admin classes and text set as text. */
      make(tag, className, text) {
        return wvi.make(tag, className, text);
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

      showStatus(message, isError = false) {
        wvi.showMessage(this.status, message);
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
        body.append('csrfmiddlewaretoken', wvi.csrfToken());
        const title = document.getElementById('id_title');
        if (title) body.append('title', title.value);
        let answer;
        try {
          answer = (await wvi.postForm(this.describeUrl, body)).payload;
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
       * in `before`, added ones in <ins> in `after`.
       */
      diff(oldText, newText, before, after) {
        wvi.wordDiff(oldText, newText, { preferInsert: true }).forEach((part) => {
          if (part.kind !== 'ins') {
            before.append(
              part.kind === 'del' ? this.make('del', '', part.text) : document.createTextNode(part.text),
            );
          }
          if (part.kind !== 'del') {
            after.append(
              part.kind === 'ins' ? this.make('ins', '', part.text) : document.createTextNode(part.text),
            );
          }
        });
      }

      /** Only here does the field change: the editor chose the suggestion. */
      use() {
        const field = this.field;
        if (field && typeof this.suggestion === 'string') {
          wvi.setFieldValue(field, this.suggestion);
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
})();

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
