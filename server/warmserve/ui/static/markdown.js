// Markdown to DOM, safe by construction: the model's text only ever becomes text nodes.
//
// No HTML is parsed, so there is nothing to sanitise: `<img src=x onerror=...>` or `<script>` in an
// answer is shown as the characters it is. Elements are made with createElement from a fixed list,
// links only for http(s) and mailto URLs (no javascript:), and no attribute takes the model's text
// except a link's href after that check. Covers what chat models write: paragraphs, headings,
// lists, block quotes, fenced code, rules, inline code, bold, italic and links.

const SAFE_URL = /^(https?:\/\/|mailto:)/i;

function el(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

// Inline spans: `code`, **bold**, *italic* / _italic_, [text](url).
const INLINE = /(`+)([\s\S]*?)\1|\*\*([\s\S]+?)\*\*|__([\s\S]+?)__|\*([^*\s][^*]*?)\*|\b_([^_\s][^_]*?)_\b|\[([^\]]+)\]\(([^)\s]+)\)/g;

export function renderInline(text, parent) {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > last) parent.append(text.slice(last, match.index));
    last = match.index + match[0].length;
    const [, ticks, code, bold1, bold2, em1, em2, label, url] = match;
    if (ticks) {
      const node = el("code");
      node.textContent = code;
      parent.append(node);
    } else if (bold1 !== undefined || bold2 !== undefined) {
      const node = el("strong");
      renderInline(bold1 ?? bold2, node);
      parent.append(node);
    } else if (em1 !== undefined || em2 !== undefined) {
      const node = el("em");
      renderInline(em1 ?? em2, node);
      parent.append(node);
    } else if (label !== undefined) {
      if (SAFE_URL.test(url)) {
        const node = el("a");
        node.href = url;
        node.rel = "noopener noreferrer nofollow";
        node.target = "_blank";
        renderInline(label, node);
        parent.append(node);
      } else {
        parent.append(match[0]);
      }
    }
  }
  if (last < text.length) parent.append(text.slice(last));
}

function paragraph(lines, parent) {
  const node = el("p");
  lines.forEach((line, i) => {
    if (i) node.append(el("br"));
    renderInline(line, node);
  });
  parent.append(node);
}

const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;

export function renderMarkdown(text, target) {
  target.replaceChildren();
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  let para = [];
  const flush = () => {
    if (para.length) paragraph(para, target);
    para = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*(```+|~~~+)\s*([\w+-]*)/);
    if (fence) {
      flush();
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      i += 1;
      const pre = el("pre");
      const code = el("code");
      if (fence[2]) code.dataset.lang = fence[2];
      code.textContent = body.join("\n");
      pre.append(code);
      target.append(pre);
      continue;
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/);
    if (heading) {
      flush();
      const node = el(`h${Math.min(heading[1].length + 2, 6)}`);
      renderInline(heading[2], node);
      target.append(node);
      i += 1;
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      flush();
      target.append(el("hr"));
      i += 1;
      continue;
    }
    if (/^\s*>/.test(line)) {
      flush();
      const quoted = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*>\s?/, ""));
      const node = el("blockquote");
      renderMarkdown(quoted.join("\n"), node);
      target.append(node);
      continue;
    }
    const item = line.match(LIST_ITEM);
    if (item) {
      flush();
      const ordered = /\d/.test(item[2]);
      const list = el(ordered ? "ol" : "ul");
      if (ordered) {
        const start = parseInt(item[2], 10);
        if (start !== 1) list.start = start;
      }
      while (i < lines.length) {
        const current = lines[i].match(LIST_ITEM);
        if (!current || /\d/.test(current[2]) !== ordered) break;
        const li = el("li");
        const body = [current[3]];
        i += 1;
        while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !LIST_ITEM.test(lines[i])) body.push(lines[i++].trim());
        renderInline(body.join(" "), li);
        list.append(li);
      }
      target.append(list);
      continue;
    }
    if (!line.trim()) {
      flush();
      i += 1;
      continue;
    }
    para.push(line);
    i += 1;
  }
  flush();
}
