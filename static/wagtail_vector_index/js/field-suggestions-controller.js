/* global window, document, FormData */

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
 * No build step: registered on Wagtail's own Stimulus application; uses
 * `window.wagtailVectorIndex` (editor-common.js, loaded before it).
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
(() => {
  const wvi = window.wagtailVectorIndex;

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
        return wvi.format(this.stringsValue[key] || key, values);
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
        try {
          const { response, payload } = await wvi.postForm(this.urlValue, data, {
            signal: request.signal,
          });
          if (this.request !== request) return;
          if (!payload) {
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
        wvi.setFieldValue(input, value);
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
        wvi.showMessage(this.messageTarget, '');
        this.statusTarget.textContent = '';
      }

      showMessage(message) {
        wvi.showMessage(this.messageTarget, message);
      }

      button(label, action, icon) {
        const button = wvi.make('button', 'button button-small button-secondary', label);
        button.type = 'button';
        button.setAttribute('data-action', `wvi-field-suggestions#${action}`);
        if (icon) button.dataset.icon = icon;
        return button;
      }

      showAlternatives(alternatives, current) {
        this.alternatives = alternatives;
        const results = this.resultsTarget;
        results.replaceChildren();

        const intro = wvi.make('p', 'w-help-text w-mb-2 w-mt-1', this.text('intro'));

        const list = wvi.make('ol', 'w-list-none w-p-0 w-m-0 w-flex w-flex-col w-gap-2');
        alternatives.forEach((alternative, index) => {
          const item = wvi.make(
            'li',
            'wvi-field-suggestion w-flex w-items-start w-gap-3 w-p-2 w-rounded-sm w-border w-border-border-furniture',
          );
          item.dataset.alternative = alternative;

          const diff = wvi.make('div', 'wvi-field-suggestion__diff w-flex-1');
          this.renderDiff(diff, current, alternative);

          const use = this.button(this.text('use'), 'use');
          use.dataset.index = String(index);
          use.setAttribute('aria-label', this.text('useLabel', { number: index + 1 }));
          item.append(diff, use);
          list.append(item);
        });

        const actions = wvi.make('div', 'w-flex w-gap-2 w-mt-3');
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
          container.append(wvi.make('span', 'w-help-text', ` (${this.text('unchanged')})`));
          return;
        }
        const parts = wvi.wordDiff(before, after);
        parts.forEach((part, index) => {
          // A removal right before an addition: a space keeps them apart.
          if (part.kind === 'ins' && index > 0 && parts[index - 1].kind === 'del') {
            container.append(document.createTextNode(' '));
          }
          if (part.kind === 'same') {
            container.append(document.createTextNode(part.text));
          } else {
            const className = part.kind === 'del' ? 'w-bg-critical-50' : 'w-bg-positive-50';
            container.append(wvi.make(part.kind, className, part.text));
          }
        });
      }
    },
  );
})();
