/* global window, document, Event, FormData */

/**
 * The related pages and "Already published?" panels of wagtail_vector_index.
 *
 * On "suggest" it posts the page edit form as it stands (the editor's unsaved
 * changes included) with the panel's `fields` (which page is edited, which
 * list holds the chosen pages) to the endpoint, and lists the pages found:
 * title, address, similarity, links to view and edit them. In a related
 * pages panel each suggestion has an "Add" button that adds a child to the
 * inline panel with Wagtail's own "add" mechanics and sets its page chooser:
 * nothing on the page changes until the editor clicks it. Titles and
 * addresses are written with `textContent` only, never parsed as HTML.
 * Uses `window.wagtailVectorIndex` (editor-common.js, loaded before it).
 *
 * @example
 * <div data-controller="wvi-similar-pages"
 *   data-wvi-similar-pages-url-value="/admin/ai/editor/related-pages/"
 *   data-wvi-similar-pages-fields-value='{"wvi-page": 3, "wvi-limit": 5}'
 *   data-wvi-similar-pages-strings-value='{"add": "Add", ...}'
 *   data-wvi-similar-pages-mode-value="related"
 *   data-wvi-similar-pages-prefix-value="related_pages"
 *   data-wvi-similar-pages-page-field-value="page">
 *   <button type="button" data-action="wvi-similar-pages#suggest"
 *     data-wvi-similar-pages-target="button">Suggest related pages</button>
 *   <p data-wvi-similar-pages-target="status"></p>
 *   <div data-wvi-similar-pages-target="error"></div>
 *   <ul data-wvi-similar-pages-target="results"></ul>
 * </div>
 */
(() => {
  const wvi = window.wagtailVectorIndex;
  /** Milliseconds to wait for editors that save their input on a debounce. */
  const SAVE_DELAY = 350;

  window.wagtail.app.register(
    'wvi-similar-pages',
    class extends window.StimulusModule.Controller {
      static targets = ['button', 'error', 'results', 'status'];

      static values = {
        fields: Object,
        mode: String,
        pageField: String,
        prefix: String,
        strings: Object,
        url: String,
      };

      /** The translated text `key`, its `%(name)s` placeholders filled in. */
      text(key, values = {}) {
        return wvi.format(this.stringsValue[key] || key, values);
      }

      /** Ask for the pages closest to the page as it is now in the editor. */
      async suggest() {
        this.showError('');
        this.showStatus(this.text('searching'));
        this.resultsTarget.hidden = true;
        this.buttonTarget.disabled = true;
        // Rich text editors write their hidden input a moment after the last
        // keystroke (Draftail: 250 ms): let them, so the latest words count.
        await new Promise((resolve) => {
          window.setTimeout(resolve, SAVE_DELAY);
        });
        const form = this.element.closest('form');
        const data = form ? new FormData(form) : new FormData();
        Object.entries(this.fieldsValue).forEach(([name, value]) => {
          data.set(name, String(value));
        });
        try {
          const { response, payload } = await wvi.postForm(this.urlValue, data);
          if (!payload) {
            this.showStatus('');
            this.showError(this.text('refused', { status: response.status }));
            return;
          }
          if (!payload.ok) {
            this.showStatus('');
            this.showError(payload.message || '');
            return;
          }
          this.showStatus(payload.results.length ? '' : payload.message || this.text('noResults'));
          this.render(payload.results);
        } catch (error) {
          this.showStatus('');
          this.showError(this.text('requestFailed', { message: error.message }));
        } finally {
          this.buttonTarget.disabled = false;
        }
      }

      showStatus(message) {
        wvi.showMessage(this.statusTarget, message);
      }

      showError(message) {
        wvi.showMessage(this.errorTarget, message);
      }

      /** A link to `url` (only addresses on a web site, never `javascript:`). */
      link(url, label, className) {
        const anchor = wvi.make('a', className, label);
        if (/^(https?:\/\/|\/)/i.test(url)) {
          anchor.href = url;
          anchor.target = '_blank';
          anchor.rel = 'noopener';
        }
        return anchor;
      }

      render(results) {
        this.resultsTarget.replaceChildren();
        results.forEach((result) => {
          const item = wvi.make(
            'li',
            'wvi-similar-pages__result w-flex w-flex-wrap w-items-center w-gap-2 w-py-3',
          );
          item.dataset.pageId = String(result.id);

          const description = wvi.make('div', 'w-flex-1');
          description.append(wvi.make('strong', 'wvi-similar-pages__title', result.title));
          if (result.url) {
            description.append(wvi.make('div', 'help wvi-similar-pages__url', result.url));
          }
          const similarity = wvi.make(
            'span',
            'w-status wvi-similar-pages__similarity',
            this.text('similarity', { percent: result.percent }),
          );

          item.append(description, similarity);
          if (result.url) {
            item.append(this.link(result.url, this.text('view'), 'button button-small button-secondary'));
          }
          if (result.edit_url) {
            item.append(this.link(result.edit_url, this.text('edit'), 'button button-small button-secondary'));
          }
          if (this.modeValue === 'related') {
            const add = wvi.make('button', 'button button-small wvi-similar-pages__add', this.text('add'));
            add.type = 'button';
            add.addEventListener('click', () => this.add(result, add));
            item.append(add);
          }
          this.resultsTarget.append(item);
        });
        this.resultsTarget.hidden = results.length === 0;
      }

      /**
       * Add `result` to the inline panel: click its (hidden) "add" button, as
       * Wagtail's own controls do, then set the new child's page chooser.
       */
      add(result, button) {
        const prefix = this.prefixValue;
        const addButton = document.getElementById(`id_${prefix}-ADD`);
        const total = document.getElementById(`id_${prefix}-TOTAL_FORMS`);
        if (!addButton || !total) return;
        if (addButton.disabled) {
          this.showError(this.text('full'));
          return;
        }
        this.showError('');
        const before = parseInt(total.value, 10);
        addButton.click();
        const after = parseInt(total.value, 10);
        if (!(after > before)) {
          this.showError(this.text('cannotAdd'));
          return;
        }
        // Wagtail 8 binds the "add" button of a MultipleChooserPanel twice (the
        // panel its script makes, and the one made again from its telepath
        // definition): keep the first new child, drop the others.
        for (let number = after - 1; number > before; number -= 1) {
          const extra = document.getElementById(`inline_child_${prefix}-${number}`);
          if (extra) extra.remove();
        }
        total.value = String(before + 1);
        const number = before;
        const inputId = `id_${prefix}-${number}-${this.pageFieldValue}`;
        const chooser = document.getElementById(`${inputId}-chooser`);
        const state = {
          id: result.id,
          title: result.title,
          adminTitle: result.title,
          edit_url: result.edit_url || null,
          editUrl: result.edit_url || null,
        };
        if (chooser && chooser.widget) {
          chooser.widget.setState(state);
        } else {
          const input = document.getElementById(inputId);
          if (input) {
            input.value = String(result.id);
            input.dispatchEvent(new Event('change', { bubbles: true }));
          }
        }
        // eslint-disable-next-line no-param-reassign
        button.disabled = true;
        // eslint-disable-next-line no-param-reassign
        button.textContent = this.text('added');
      }
    },
  );
})();
