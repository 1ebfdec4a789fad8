// patbot demo: the Slack simulator page. Vanilla JS, no build step.
// Every string from the server is put in the page with textContent or as an attribute value set through
// the DOM, never as HTML: token comments and user names cannot inject markup.
"use strict";

(function () {
  const EMOJI = {
    key: "🔑", white_check_mark: "✅", x: "❌", no_entry: "⛔", heavy_multiplication_x: "✖️",
    hourglass: "⌛", hourglass_flowing_sand: "⏳", warning: "⚠️", tada: "🎉", bell: "🔔", lock: "🔒",
    unlock: "🔓", wave: "👋", eyes: "👀", rotating_light: "🚨", calendar: "📅", memo: "📝",
    bar_chart: "📊", chart_with_upwards_trend: "📈", chart_with_downwards_trend: "📉", broom: "🧹",
    information_source: "ℹ️", heavy_check_mark: "✔️", red_circle: "🔴", large_green_circle: "🟢",
    large_yellow_circle: "🟡", large_orange_circle: "🟠", white_circle: "⚪", arrow_up: "⬆️",
    arrow_down: "⬇️", arrow_right: "➡️", point_right: "👉", robot_face: "🤖", shield: "🛡️",
    skull: "💀", zzz: "💤", clock3: "🕒", mag: "🔍", gear: "⚙️", slack: "💬", remind: "🔔",
    summary: "📊", construction: "🚧", ghost: "👻", new: "🆕", thumbsup: "👍", "+1": "👍",
    ok_hand: "👌", white_check: "✅", heavy_minus_sign: "➖", heavy_plus_sign: "➕",
  };
  const AVATAR_COLOURS = ["#e01e5a", "#36c5f0", "#2eb67d", "#ecb22e", "#7c3085", "#1264a3", "#e8912d"];
  const SAFE_LINK = /^(https?:|mailto:)/i;
  const SAFE_IMAGE = /^(https?:|data:image\/|\/)/i;

  const S = {
    user: null,
    view: "messages", // "admin" | "messages" | "home"
    state: null,
    raw: "",
    seen: {}, // user -> view -> items seen
    fastUntil: 0,
    requested: 0, // refreshes started
    applied: 0, // the newest refresh applied
    reloaded: true, // until the first state arrives: a (re)loaded Slack client has no modal open
  };

  // ------------------------------------------------------------------ DOM helpers

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function $(id) { return document.getElementById(id); }

  function decode(text) {
    return String(text).replace(/&(lt|gt|amp);/g, (_, name) => ({ lt: "<", gt: ">", amp: "&" })[name]);
  }

  function emojify(text) {
    return String(text).replace(/:([a-z0-9_+-]+):/g, (whole, name) => EMOJI[name] || whole);
  }

  function toast(message, isError) {
    const node = el("div", "toast" + (isError ? " error" : ""), message);
    $("toasts").append(node);
    setTimeout(() => node.remove(), isError ? 7000 : 3500);
  }

  function initials(user) {
    const name = (user && (user.real_name || user.name)) || "?";
    return name.trim().charAt(0).toUpperCase() || "?";
  }

  function colourOf(id) {
    let sum = 0;
    for (const ch of String(id)) sum = (sum + ch.charCodeAt(0)) % 9973;
    return AVATAR_COLOURS[sum % AVATAR_COLOURS.length];
  }

  function timeOf(ts) {
    const date = new Date(parseFloat(ts) * 1000);
    return isNaN(date) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // ------------------------------------------------------------------ mrkdwn

  function userName(id, label) {
    const users = (S.state && S.state.users) || {};
    const user = users[id];
    if (user) return user.name;
    return label ? decode(label) : id;
  }

  function special(inner) {
    const bar = inner.indexOf("|");
    const head = bar >= 0 ? inner.slice(0, bar) : inner;
    const label = bar >= 0 ? inner.slice(bar + 1) : "";
    if (head.startsWith("@")) return el("span", "mention", "@" + userName(head.slice(1), label));
    if (head.startsWith("#")) return el("span", "mention", "#" + (label ? decode(label) : head.slice(1)));
    if (head.startsWith("!date^")) {
      const node = el("span", "date", decode(label || head));
      const seconds = parseInt(head.split("^")[1], 10);
      if (!isNaN(seconds)) node.title = new Date(seconds * 1000).toLocaleString();
      return node;
    }
    if (head.startsWith("!subteam^")) return el("span", "mention", label ? decode(label) : "@group");
    if (head.startsWith("!")) return el("span", "mention", "@" + head.slice(1).split("^")[0]);
    const url = decode(head);
    const text = label ? decode(label) : url;
    if (!SAFE_LINK.test(url)) return document.createTextNode(text);
    const link = el("a", null, text);
    link.href = url;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    return link;
  }

  function isWordChar(ch) { return ch !== undefined && /[A-Za-z0-9]/.test(ch); }

  // Slack formats *bold* only at a word's edge: after a space or an opening bracket or quote.
  function opensFormat(previous) { return previous === undefined || /[\s(\[{"'“‘]/.test(previous); }

  function findClose(s, i, marker) {
    if (i + 1 >= s.length || /\s/.test(s[i + 1])) return -1;
    for (let k = i + 1; k < s.length; k++) {
      const ch = s[k];
      if (ch === "`") { const end = s.indexOf("`", k + 1); if (end > 0) { k = end; continue; } }
      if (ch === "<") { const end = s.indexOf(">", k + 1); if (end > 0) { k = end; continue; } }
      if (ch === marker && k > i + 1 && !/\s/.test(s[k - 1]) && !isWordChar(s[k + 1])) return k;
    }
    return -1;
  }

  function inline(s, parent) {
    let buffer = "";
    const flush = () => {
      if (buffer) parent.append(document.createTextNode(decode(buffer)));
      buffer = "";
    };
    let i = 0;
    while (i < s.length) {
      const ch = s[i];
      if (ch === "`") {
        const end = s.indexOf("`", i + 1);
        if (end > i + 1) {
          flush();
          parent.append(el("code", null, decode(s.slice(i + 1, end))));
          i = end + 1;
          continue;
        }
      } else if (ch === "<") {
        const end = s.indexOf(">", i + 1);
        if (end > i + 1) {
          flush();
          parent.append(special(s.slice(i + 1, end)));
          i = end + 1;
          continue;
        }
      } else if ((ch === "*" || ch === "_" || ch === "~") && opensFormat(s[i - 1])) {
        const end = findClose(s, i, ch);
        if (end > 0) {
          flush();
          const node = el(ch === "*" ? "b" : ch === "_" ? "i" : "s");
          inline(s.slice(i + 1, end), node);
          parent.append(node);
          i = end + 1;
          continue;
        }
      } else if (ch === ":") {
        const match = /^:([a-z0-9_+-]+):/.exec(s.slice(i));
        if (match && EMOJI[match[1]]) {
          buffer += EMOJI[match[1]];
          i += match[0].length;
          continue;
        }
      }
      buffer += ch;
      i += 1;
    }
    flush();
  }

  function lines(text, parent) {
    const rows = text.split("\n");
    rows.forEach((row, index) => {
      const quote = /^(&gt;|>) ?/.exec(row);
      if (quote) {
        const block = el("blockquote");
        inline(row.slice(quote[0].length), block);
        parent.append(block);
        return;
      }
      inline(row, parent);
      if (index < rows.length - 1 && !/^(&gt;|>)/.test(rows[index + 1])) parent.append(el("br"));
    });
  }

  function mrkdwn(text, cls) {
    const root = el("div", "mrkdwn" + (cls ? " " + cls : ""));
    const parts = String(text || "").split("```");
    parts.forEach((part, index) => {
      const isCode = index % 2 === 1 && index < parts.length - 1;
      if (isCode) root.append(el("pre", null, decode(part.replace(/^\n/, ""))));
      else lines(index % 2 === 1 ? "```" + part : part, root);
    });
    return root;
  }

  function textObject(obj, cls) {
    if (!obj || typeof obj !== "object") return el("span");
    if (obj.type === "mrkdwn") return mrkdwn(obj.text, cls);
    const text = obj.emoji === false ? String(obj.text || "") : emojify(obj.text || "");
    return el("span", cls ? cls + " plain" : "plain", text);
  }

  // ------------------------------------------------------------------ Block Kit

  function button(element, blockId, source) {
    const node = el("button", "bk-button", emojify((element.text && element.text.text) || "Button"));
    node.type = "button";
    if (element.style === "primary" || element.style === "danger") node.classList.add(element.style);
    node.dataset.actionId = String(element.action_id || "");
    node.addEventListener("click", async () => {
      if (element.confirm && !(await confirmDialog(element.confirm))) return;
      if (element.url && SAFE_LINK.test(element.url)) window.open(element.url, "_blank", "noopener");
      node.disabled = true;
      const ok = await post("action", {
        source: source,
        action_id: element.action_id,
        block_id: blockId,
        value: element.value === undefined ? null : element.value,
        text: (element.text && element.text.text) || "",
      });
      if (!ok) node.disabled = false;
    });
    return node;
  }

  function image(url, alt) {
    const node = el("img");
    if (SAFE_IMAGE.test(String(url || ""))) node.src = url;
    node.alt = String(alt || "");
    return node;
  }

  function element(element, blockId, source) {
    if (element.type === "button") return button(element, blockId, source);
    if (element.type === "image") return image(element.image_url, element.alt_text);
    if (element.type === "mrkdwn" || element.type === "plain_text") return textObject(element);
    return el("span", "bk-unsupported", "[" + String(element.type || "element") + "]");
  }

  function renderBlocks(blocks, source) {
    const root = el("div", "blocks");
    (blocks || []).forEach((block, index) => {
      if (!block || typeof block !== "object") return;
      const blockId = String(block.block_id || "b" + index);
      switch (block.type) {
        case "header":
          root.append(textObject(block.text, "bk-header"));
          break;
        case "section": {
          const node = el("div", "bk-section");
          const text = el("div", "bk-text");
          if (block.text) text.append(textObject(block.text));
          if (Array.isArray(block.fields) && block.fields.length) {
            const fields = el("div", "bk-fields");
            block.fields.forEach((field) => fields.append(textObject(field)));
            text.append(fields);
          }
          node.append(text);
          if (block.accessory) node.append(element(block.accessory, blockId, source));
          root.append(node);
          break;
        }
        case "context": {
          const node = el("div", "bk-context");
          (block.elements || []).forEach((item) => node.append(element(item, blockId, source)));
          root.append(node);
          break;
        }
        case "divider":
          root.append(el("hr", "bk-divider"));
          break;
        case "actions": {
          const node = el("div", "bk-actions");
          (block.elements || []).forEach((item) => node.append(element(item, blockId, source)));
          root.append(node);
          break;
        }
        case "image": {
          const node = el("div", "bk-image");
          if (block.title) node.append(textObject(block.title));
          node.append(image(block.image_url, block.alt_text));
          root.append(node);
          break;
        }
        case "input": {
          const node = el("div", "bk-section");
          node.append(textObject(block.label));
          node.append(el("span", "bk-unsupported", "[input fields are not simulated]"));
          root.append(node);
          break;
        }
        default:
          root.append(el("div", "bk-unsupported", "[unsupported block: " + String(block.type) + "]"));
      }
    });
    return root;
  }

  // ------------------------------------------------------------------ dialogs

  function confirmDialog(confirm) {
    return new Promise((resolve) => {
      const backdrop = $("confirm-backdrop");
      $("confirm-title").textContent = emojify((confirm.title && confirm.title.text) || "Are you sure?");
      const body = $("confirm-text");
      body.replaceChildren(textObject(confirm.text || { type: "plain_text", text: "" }));
      const ok = $("confirm-ok");
      const deny = $("confirm-deny");
      ok.textContent = (confirm.confirm && confirm.confirm.text) || "Yes";
      deny.textContent = (confirm.deny && confirm.deny.text) || "Cancel";
      ok.className = "bk-button " + (confirm.style === "danger" ? "danger" : "primary");
      const done = (answer) => {
        backdrop.hidden = true;
        ok.onclick = deny.onclick = null;
        resolve(answer);
      };
      ok.onclick = () => done(true);
      deny.onclick = () => done(false);
      backdrop.hidden = false;
      ok.focus();
    });
  }

  // ------------------------------------------------------------------ server

  async function post(path, body) {
    S.fastUntil = Date.now() + 8000;
    try {
      const response = await fetch("api/" + path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(Object.assign({ user: S.user }, body)),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok || answer.ok === false) {
        toast(answer.error || "HTTP " + response.status, true);
        return false;
      }
      setTimeout(refresh, 150);
      return true;
    } catch (error) {
      toast("The simulator is not reachable: " + error, true);
      return false;
    }
  }

  async function refresh(force) {
    if (!S.user && S.state) S.user = S.state.me.id;
    const seq = ++S.requested;
    const url = "api/state" + (S.user ? "?user=" + encodeURIComponent(S.user) : "");
    let response;
    try {
      response = await fetch(url, { cache: "no-store" });
    } catch (error) {
      document.body.dataset.offline = "1";
      return;
    }
    delete document.body.dataset.offline;
    if (response.status === 400 && S.user) { // an unknown user in the URL: start with the first person
      S.user = null;
      return refresh(true);
    }
    const raw = await response.text();
    if (!response.ok || seq < S.applied) return; // an older answer overtaken by a newer one
    S.applied = seq;
    if (raw === S.raw && !force) return;
    const state = JSON.parse(raw);
    if (S.user && state.me.id !== S.user) return; // asked before switching users
    S.raw = raw;
    S.state = state;
    if (!S.user) S.user = state.me.id;
    if (S.reloaded) {
      S.reloaded = false;
      if (state.modal) { // opened before the reload: Slack's client drops it, and so do we
        post("close", { view_id: state.modal.id });
        state.modal = null;
      }
    }
    render();
  }

  function poll() {
    refresh().finally(() => setTimeout(poll, Date.now() < S.fastUntil ? 300 : 1000));
  }

  // ------------------------------------------------------------------ rendering

  function conversation(key) {
    return S.state.conversations.find((c) => c.key === key);
  }

  function itemsOf(view) {
    if (view === "home") return [];
    const conv = conversation(view === "admin" ? "admin" : "dm");
    return (conv && S.state.timelines[conv.id]) || [];
  }

  function unread(view) {
    const seen = (S.seen[S.user] = S.seen[S.user] || {});
    const count = itemsOf(view).filter((item) => item.kind !== "note").length;
    if (seen[view] === undefined || view === S.view) seen[view] = count;
    return Math.max(0, count - seen[view]);
  }

  function navItem(view, mark, label) {
    const node = el("button", "nav-item" + (S.view === view ? " active" : ""));
    node.type = "button";
    node.dataset.view = view;
    node.append(el("span", "hash", mark), el("span", "label", label));
    const count = view === "home" ? 0 : unread(view);
    if (count) node.append(el("span", "badge", count));
    node.addEventListener("click", () => switchView(view));
    return node;
  }

  function renderSidebar() {
    const people = $("people");
    people.replaceChildren();
    S.state.people.forEach((person) => {
      const node = el("button", "persona" + (person.id === S.user ? " active" : ""));
      node.type = "button";
      node.dataset.user = person.id;
      node.setAttribute("role", "radio");
      node.setAttribute("aria-checked", person.id === S.user ? "true" : "false");
      const avatar = el("span", "avatar", initials(person));
      avatar.style.background = colourOf(person.id);
      const who = el("span", "who");
      who.append(el("span", "name", person.real_name || person.name), el("span", "role", person.role));
      node.append(avatar, who);
      node.addEventListener("click", () => switchUser(person.id));
      people.append(node);
    });
    const admin = conversation("admin");
    $("channels").replaceChildren(navItem("admin", "#", admin ? admin.name : "admin"));
    const apps = $("apps");
    apps.replaceChildren(navItem("messages", "✉", S.state.bot.name + " · Messages"), navItem("home", "⌂", S.state.bot.name + " · Home"));

    const weekly = S.state.weekly;
    const run = $("weekly-run");
    run.disabled = !weekly.available || weekly.running;
    run.textContent = weekly.running ? "Running the weekly job…" : "Run the weekly job now";
    run.title = weekly.available ? "Send this week's reminder DMs and post the admin summary" : weekly.note || "";
    $("weekly-note").textContent = weekly.available ? weekly.last || "" : weekly.note || "";
  }

  function renderHeader() {
    const title = $("conv-title");
    const tabs = $("conv-tabs");
    tabs.replaceChildren();
    if (S.view === "admin") {
      title.textContent = "# " + conversation("admin").name;
    } else {
      title.textContent = S.state.bot.name;
      [["home", "Home"], ["messages", "Messages"]].forEach(([view, label]) => {
        const tab = el("button", S.view === view ? "active" : "", label);
        tab.type = "button";
        tab.setAttribute("role", "tab");
        tab.dataset.tab = view;
        tab.addEventListener("click", () => switchView(view));
        tabs.append(tab);
      });
    }
    $("composer").hidden = S.view === "home";
  }

  function messageNode(item) {
    const users = S.state.users || {};
    const bot = S.state.bot;
    const node = el("div", "msg");
    node.dataset.kind = item.kind;
    node.dataset.ts = item.ts;
    node.dataset.id = item.id;
    if (item.kind === "ephemeral") node.classList.add("ephemeral");
    if (item.thread_ts && item.thread_ts !== item.ts) node.classList.add("reply");
    const avatar = el("div", "avatar", initials(users[bot.id] || { name: bot.name }));
    const body = el("div", "body");
    const meta = el("div", "meta");
    meta.append(el("span", "sender", bot.name), el("span", "app-tag", "APP"), el("span", "time", timeOf(item.ts)));
    if (item.edited) meta.append(el("span", "edited", "(edited)"));
    body.append(meta);
    if (item.kind === "ephemeral") body.append(el("div", "only-you", "👁 Only visible to you"));
    if (item.thread_ts && item.thread_ts !== item.ts) body.append(el("div", "reply-note", "↳ replied in a thread"));
    if (item.blocks && item.blocks.length) body.append(renderBlocks(item.blocks, item.source));
    else if (item.text) body.append(mrkdwn(item.text));
    if (item.files && item.files.length) {
      const files = el("div", "files");
      item.files.forEach((file) => {
        const url = String(file.url || "");
        if (file.image && url.startsWith("/")) {
          const link = el("a", "file-image");
          link.href = url;
          link.target = "_blank";
          link.rel = "noopener noreferrer";
          link.append(image(url, file.title));
          files.append(link);
          return;
        }
        const link = el("a", "file");
        if (url.startsWith("/")) link.href = url;
        link.setAttribute("download", String(file.name || "file"));
        const extension = String(file.name || "").split(".").pop().toUpperCase().slice(0, 4) || "FILE";
        link.append(el("span", "icon", extension), el("span", "title", file.title || file.name));
        files.append(link);
      });
      body.append(files);
    }
    node.append(avatar, body);
    return node;
  }

  function noteNode(item) {
    const node = el("div", "note");
    node.dataset.kind = "note";
    node.append(document.createTextNode("You used "), el("code", null, item.text));
    return node;
  }

  function renderTimeline() {
    const timeline = $("timeline");
    const atBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 60;
    const previousTop = timeline.scrollTop;
    timeline.replaceChildren();
    if (S.view === "home") {
      const home = el("div", "home");
      const view = S.state.home;
      if (view) home.append(renderBlocks(view.blocks, { kind: "home" }));
      else home.append(el("div", "empty", "Opening the Home tab…"));
      timeline.append(home);
      timeline.scrollTop = previousTop;
      return;
    }
    const items = itemsOf(S.view);
    if (!items.length) {
      const hint = S.view === "admin"
        ? "Approval requests and weekly summaries appear here."
        : "No messages yet. Try /pat help or /pat audit.";
      timeline.append(el("div", "empty", hint));
    }
    items.forEach((item) => timeline.append(item.kind === "note" ? noteNode(item) : messageNode(item)));
    timeline.scrollTop = atBottom ? timeline.scrollHeight : previousTop;
  }

  function renderModal() {
    const backdrop = $("modal-backdrop");
    const view = S.state.modal;
    if (!view) {
      backdrop.hidden = true;
      return;
    }
    backdrop.hidden = false;
    backdrop.dataset.viewId = String(view.id || "");
    $("modal-title").textContent = emojify((view.title && view.title.text) || "");
    const body = $("modal-body");
    body.replaceChildren(renderBlocks(view.blocks, { kind: "modal", view_id: view.id }));
    if (view.errors && typeof view.errors === "object") {
      Object.values(view.errors).forEach((error) => body.append(el("div", "modal-errors", error)));
    }
    const close = $("modal-close");
    close.textContent = (view.close && view.close.text) || "Cancel";
    close.onclick = () => post("close", { view_id: view.id });
    const submit = $("modal-submit");
    submit.hidden = !view.submit;
    submit.disabled = false;
    submit.textContent = (view.submit && view.submit.text) || "Submit";
    submit.onclick = async () => {
      submit.disabled = true;
      if (!(await post("submit", { view_id: view.id }))) submit.disabled = false;
    };
  }

  function render() {
    if (!S.state) return;
    document.body.dataset.user = S.state.me.id;
    document.querySelector(".workspace-name").textContent = S.state.team || "Slack";
    document.body.dataset.view = S.view;
    renderSidebar();
    renderHeader();
    renderTimeline();
    renderModal();
    document.body.dataset.ready = "1";
    saveLocation();
  }

  // ------------------------------------------------------------------ navigation

  function saveLocation() {
    const hash = "#user=" + encodeURIComponent(S.user || "") + "&view=" + encodeURIComponent(S.view);
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }

  function loadLocation() {
    const params = new URLSearchParams(location.hash.slice(1));
    S.user = params.get("user") || null;
    const view = params.get("view");
    if (view === "admin" || view === "messages" || view === "home") S.view = view;
  }

  function openHome() {
    post("home", {});
  }

  function switchView(view) {
    S.view = view;
    if (view === "home") openHome();
    render();
    if (view !== "home") $("composer-input").focus();
  }

  function switchUser(userId) {
    if (userId === S.user) return;
    S.user = userId;
    S.raw = "";
    saveLocation();
    refresh(true).then(() => {
      if (S.view === "home") openHome();
    });
  }

  // ------------------------------------------------------------------ wiring

  document.addEventListener("DOMContentLoaded", () => {
    loadLocation();
    $("composer").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = $("composer-input");
      const text = input.value.trim();
      if (!text) return;
      const conv = conversation(S.view === "admin" ? "admin" : "dm");
      const command = S.state.command;
      if (text.split(/\s/)[0] !== command) {
        toast("Only " + command + " commands reach patbot here; try " + command + " help.", true);
        return;
      }
      input.value = "";
      if (!(await post("command", { channel: conv.id, text: text }))) input.value = text;
    });
    $("weekly-run").addEventListener("click", () => post("weekly", {}).then((ok) => ok && toast("Weekly job started")));
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      if (!$("confirm-backdrop").hidden) $("confirm-deny").click();
      else if (!$("modal-backdrop").hidden) $("modal-close").click();
    });
    refresh(true).then(() => {
      if (S.view === "home") openHome();
      poll();
    });
  });
})();
