/* global window, document, fetch, Event */

/**
 * What the Stimulus controllers of wagtail_vector_index's editor features
 * (field suggestions, image descriptions, similar pages) share, as
 * `window.wagtailVectorIndex`. No build step, no modules: loaded before the
 * controllers (panel Media, the `insert_editor_js` hook); loading it twice
 * is harmless.
 *
 * Model output is only ever written with `textContent`, never parsed as
 * HTML.
 */
(() => {
  /** `template` with its `%(name)s` placeholders filled in, `%%` as `%`. */
  function format(template, values = {}) {
    return template
      .replace(/%\((\w+)\)s/g, (placeholder, name) =>
        name in values ? String(values[name]) : placeholder,
      )
      .replace(/%%/g, '%');
  }

  /** The CSRF token of the page: a form's hidden input, else Wagtail's config. */
  function csrfToken() {
    const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
    if (input) return input.value;
    const config = window.wagtailConfig || {};
    return config.CSRF_TOKEN || '';
  }

  /**
   * POST `data` (a FormData, holding the CSRF token) to the JSON endpoint
   * `url`. Resolves to `{ response, payload }`: `payload` is the answer
   * (`{"ok": ..., "message": ...}`), or null when it is not JSON. Rejects
   * when the request cannot be made (network, `signal` aborted).
   */
  async function postForm(url, data, { signal } = {}) {
    const token = data.get('csrfmiddlewaretoken') || '';
    const headers = { Accept: 'application/json' };
    if (token) headers['X-CSRFToken'] = token;
    const response = await fetch(url, {
      method: 'POST',
      body: data,
      credentials: 'same-origin',
      headers,
      signal,
    });
    let payload = null;
    try {
      payload = await response.json();
    } catch (error) {
      payload = null;
    }
    if (!payload || typeof payload !== 'object') payload = null;
    return { response, payload };
  }

  /**
   * The word-level difference of `before` and `after` (a longest common
   * subsequence of words and spaces; editor fields are short), as runs
   * `{ kind: 'same' | 'del' | 'ins', text }`. Where two alignments are as
   * long, removals come first, or additions with `preferInsert`.
   */
  function wordDiff(before, after, { preferInsert = false } = {}) {
    const a = (before || '').split(/(\s+)/).filter((token) => token !== '');
    const b = (after || '').split(/(\s+)/).filter((token) => token !== '');
    const cols = b.length + 1;
    const table = new Array((a.length + 1) * cols).fill(0);
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
      const skipOld = table[(i + 1) * cols + j];
      const skipNew = table[i * cols + j + 1];
      if (a[i] === b[j]) {
        push('same', a[i]);
        i += 1;
        j += 1;
      } else if (preferInsert ? skipNew < skipOld : skipOld >= skipNew) {
        push('del', a[i]);
        i += 1;
      } else {
        push('ins', b[j]);
        j += 1;
      }
    }
    while (i < a.length) push('del', a[(i += 1) - 1]);
    while (j < b.length) push('ins', b[(j += 1) - 1]);
    return parts;
  }

  /** An element `tag` with `className` and, if given, `text` as text. */
  function make(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  }

  /**
   * Write `message` (as text) into `element`, such as a `role=alert`
   * element; hide it when there is none.
   */
  function showMessage(element, message) {
    // eslint-disable-next-line no-param-reassign
    element.textContent = message;
    // eslint-disable-next-line no-param-reassign
    element.hidden = !message;
  }

  /** Put `value` in the form field `input` as typing would (`input`, `change`). */
  function setFieldValue(input, value) {
    // eslint-disable-next-line no-param-reassign
    input.value = value;
    input.dispatchEvent(new Event('input', { bubbles: true }));
    input.dispatchEvent(new Event('change', { bubbles: true }));
  }

  window.wagtailVectorIndex = {
    ...(window.wagtailVectorIndex || {}),
    csrfToken,
    format,
    make,
    postForm,
    setFieldValue,
    showMessage,
    wordDiff,
  };
})();
