// Tool calls in the page: the model's calls (and the results that answered them) as compact cards,
// and the page's one built-in tool. The page is a chat for people, not an agent: it runs no tool of
// anyone else's. With "Demo tool" on, it offers the model `lookup`, a local function that only echoes
// its query, so a tool loop (call, result, the answer that uses it) can be watched, offline with the
// demo provider. A call of any other tool (a session an agent used) shows with "no result from this page".

import { prettyJson } from "./markdown.js";

/** The built-in tool as the native API takes it (the flat shape). */
export const LOOKUP_TOOL = Object.freeze({
  name: "lookup",
  description:
    "Look a query up. A demo tool run by the chat page in the user's browser: it knows nothing and only echoes the query with the time.",
  parameters: {
    type: "object",
    properties: { query: { type: "string", description: "What to look up." } },
    required: ["query"],
  },
});

/** Whether the page itself can answer a call of this tool. */
export function runsHere(name) {
  return name === LOOKUP_TOOL.name;
}

/**
 * Runs the built-in `lookup` for a finished call: a result part ({call_id, output, is_error}), in
 * the browser, deterministic but for the clock. Arguments that are not {"query": string} are an
 * error result the model is told about, as a real tool would answer.
 */
export function runLocalTool(call, now = new Date()) {
  const query = call.input && typeof call.input === "object" ? call.input.query : undefined;
  if (typeof query !== "string") {
    return {
      call_id: call.id,
      output: `lookup needs {"query": "<text>"}; it was called with ${call.arguments || "no arguments"}.`,
      is_error: true,
    };
  }
  return {
    call_id: call.id,
    output: `lookup("${query}"): nothing found. This demo tool ran in the browser at ${now.toISOString()} and only echoes its query.`,
    is_error: false,
  };
}

/** The calls of a stored message's parts, as answers.js keeps them. */
export function callsFromParts(parts) {
  return (parts || [])
    .filter((part) => part.type === "tool_call")
    .map((part, index) => ({
      index,
      id: part.id,
      name: part.name,
      arguments: part.arguments || "",
      input: part.input,
      status: part.incomplete ? "cut" : "called",
    }));
}

/** The tool_result parts of a stored tool message. */
export function resultsFromParts(parts) {
  return (parts || [])
    .filter((part) => part.type === "tool_result")
    .map((part) => ({ call_id: part.call_id, name: part.name || "", output: String(part.output ?? ""), is_error: Boolean(part.is_error) }));
}

// --- cards ------------------------------------------------------------------------------------------

const PREVIEW_CHARS = 160;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function oneLine(text) {
  const flat = String(text || "").replace(/\s+/g, " ").trim();
  return flat.length > PREVIEW_CHARS ? `${flat.slice(0, PREVIEW_CHARS)}…` : flat;
}

/**
 * What a card says about its call: [state (a CSS hook and the tests' handle), the status, a note].
 * `result` is the tool_result answering it ({output, is_error, notSent?}); `note` why the page sent
 * none, when it decided so; `streaming` while the answer has not ended (a whole call waits for it).
 */
function cardState(call, result, note, streaming) {
  if (call.status === "calling") return ["calling", "calling…", ""];
  if (call.status === "cut") {
    return ["cut", "cut off", "The answer ended before this call's arguments were complete: it was never run."];
  }
  if (result?.notSent) return ["unanswered", "not sent", result.notSent];
  if (result) return [result.is_error ? "error" : "done", result.is_error ? "error" : "result", call.orphan ? "Its call is not on this page." : ""];
  if (streaming) return ["called", "called", ""];
  if (note) return ["unanswered", "not run", note];
  const why = runsHere(call.name)
    ? "The page runs its demo tool only for an answer it asked for and follows in this tab; no result was sent for this call."
    : "This page runs no tool but its own demo tool: a result for this call would come from the client that offered the tool.";
  return ["unanswered", "no result from this page", why];
}

function buildCard() {
  const card = element("details", "tool-card");
  const summary = element("summary", "tool-summary");
  const head = element("span", "tool-head");
  head.append(
    element("span", "tool-icon", "ƒ"),
    element("span", "tool-name"),
    element("code", "tool-args-preview"),
    element("span", "tool-status"),
  );
  summary.append(head, element("span", "tool-result-preview"));
  const detail = element("div", "tool-detail");
  const argsPre = element("pre", "tool-args");
  argsPre.append(element("code"));
  detail.append(
    element("div", "tool-label", "Arguments"),
    argsPre,
    element("div", "tool-label tool-result-label"),
    element("pre", "tool-output"),
    element("p", "tool-note"),
  );
  card.append(summary, detail);
  return card;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * Fills a card for `call` (the node is kept between repaints, so its open state and focus stay).
 * Everything the model or a tool wrote goes in as text, never as HTML.
 */
function fillCard(card, call, result, note, streaming) {
  const [state, status, explanation] = cardState(call, result, note, streaming);
  card.dataset.state = state;
  card.dataset.callId = call.id || "";
  card.dataset.name = call.name || "";
  const [summary, detail] = card.children;
  const [head, resultPreview] = summary.children;
  const [, name, preview, statusNode] = head.children;
  setText(name, call.name || "tool");
  setText(preview, oneLine(call.arguments));
  setText(statusNode, status);
  setText(resultPreview, result ? `→ ${oneLine(result.output)}` : "");
  resultPreview.hidden = !result;

  const [argsLabel, argsPre, resultLabel, output, noteNode] = detail.children;
  // partial arguments as they arrived; once whole, pretty JSON when they parse
  const pretty = call.status === "called" ? prettyJson(call.arguments) : null;
  setText(argsPre.firstChild, pretty ?? (call.arguments || (call.status === "calling" ? "" : "(none)")));
  argsLabel.hidden = argsPre.hidden = Boolean(call.orphan);
  resultLabel.hidden = output.hidden = !result;
  setText(resultLabel, result?.is_error ? "Error" : "Result");
  setText(output, result ? result.output : "");
  setText(noteNode, explanation);
  noteNode.hidden = !explanation;
}

/**
 * Paints `calls` into `container` as cards, keyed by call id (or index while the id is unknown).
 * `resultFor(call)` gives the result answering a call, `noteFor(call)` why the page sent none;
 * `streaming`: the answer has not ended yet.
 */
export function paintToolCards(container, calls, { resultFor, noteFor = () => "", streaming = false }) {
  const existing = new Map([...container.children].map((card) => [card.dataset.key, card]));
  const cards = calls.map((call) => {
    const key = call.id || `#${call.index}`;
    let card = existing.get(key) ?? existing.get(`#${call.index}`);
    if (!card) card = buildCard();
    card.dataset.key = key;
    fillCard(card, call, resultFor(call), noteFor(call), streaming);
    return card;
  });
  const same = cards.length === container.children.length && cards.every((card, i) => container.children[i] === card);
  if (!same) container.replaceChildren(...cards);
}

/** The card of a result whose call is not on the page (its answer is not shown): name and output. */
export function orphanCall(result, index = 0) {
  return { index, id: result.call_id, name: result.name || "tool", arguments: "", input: undefined, status: "called", orphan: true };
}
