// The open chat's live side: its socket, and the one answer being generated in it (a turn).
// A turn is sent over the session's WebSocket, or over SSE when the socket cannot connect; an answer
// already running (page reloaded, another tab) is followed with `resume` from its first event.
// A turn that offered the page's demo tool and ends with finish_reason tool_calls goes on by
// itself: the page runs the tool, posts the results as a `tool` message and follows the next answer.

import { chatApi } from "./api.js";
import { answerFrom, applyFrame, restart, servedBy } from "./answers.js";
import { explain, isAuthError } from "./errors.js";
import { SessionSocket, isTerminal, sseResume, sseTurn } from "./transport.js";
import { runLocalTool, runsHere } from "./tools.js";

const forcedTransport = new URLSearchParams(window.location.search).get("transport");
const BACKGROUND_SOCKET_MS = 10 * 60 * 1000;
/** Model calls one message may lead to before the page stops answering tool calls by itself. */
export const MAX_TOOL_ROUNDS = 5;

export function uuid() {
  if (window.crypto?.randomUUID) return window.crypto.randomUUID();
  const bytes = window.crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A turn's request: the user's text, or (`turn.results`) a tool message of the page's results. */
function turnBody(session, turn) {
  const body = turn.results
    ? { role: "tool", parts: turn.results.map(({ call_id, output, is_error }) => ({ type: "tool_result", call_id, output, is_error })) }
    : { content: turn.content };
  if (turn.files?.length) body.attachments = turn.files.map((file) => file.id);
  body.client_message_id = uuid();
  if (session.provider) body.provider = session.provider;
  if (session.model) body.model = session.model;
  if (session.system_prompt) body.system = session.system_prompt;
  if (turn.jsonMode) body.json = true;
  if (turn.tools?.length) body.tools = turn.tools; // sent with every request of the loop: the server keeps none
  return body;
}

/**
 * hooks: streaming(busy), connection(label, kind), banner(text), error(error), finished(),
 * servedBy(label), notSent(content, files), reload() (re-read the open chat's messages).
 */
export class LiveChat {
  constructor(messages, hooks) {
    this.messages = messages;
    this.hooks = hooks;
    this.session = null;
    this.socket = null;
    this.turn = null;
  }

  get busy() {
    return this.turn !== null;
  }

  follows(messageId) {
    return this.turn !== null && this.turn.messageId === messageId;
  }

  // --- the socket of the open chat --------------------------------------------------------------
  attach(session) {
    this.session = session;
    if (forcedTransport === "sse") {
      this.hooks.connection("HTTP streaming", "sse");
      return;
    }
    const socket = new SessionSocket(session.session_key, {
      onFrame: (frame) => {
        if (socket === this.socket) this.frame(frame);
      },
      onState: (state, code) => {
        if (socket === this.socket) this._socketState(state, code);
      },
      wanted: () => socket === this.socket && this.turn?.transport === "ws",
    });
    this.socket = socket;
    socket.ensureOpen();
  }

  /** Leaves the open chat. A socket whose answer still runs stays open until it ends (it would be stopped otherwise). */
  detach() {
    const socket = this.socket;
    const turn = this.turn;
    this.socket = null;
    this.session = null;
    this.turn = null;
    this.hooks.streaming(false);
    if (!socket) return;
    if (turn?.transport !== "ws") {
      socket.close();
      return;
    }
    socket.onState = () => {};
    socket.onFrame = (frame) => {
      if (isTerminal(frame) && (!turn.messageId || frame.message_id === turn.messageId)) socket.close();
    };
    setTimeout(() => socket.close(), BACKGROUND_SOCKET_MS);
  }

  async _useSocket() {
    return this.socket !== null && (await this.socket.ensureOpen());
  }

  _socketState(state, code) {
    const turn = this.turn;
    if (state === "connecting") this.hooks.connection("Connecting…", "wait");
    if (state === "open" || state === "reconnected") this.hooks.connection("Live", "ok");
    if (state === "reconnected" && turn?.transport === "ws") {
      // the socket dropped mid-answer: pick it up where it was (a repeated client id is idempotent)
      if (turn.messageId) this.socket.send({ type: "resume", message_id: turn.messageId, after_seq: this._lastSeq(turn) });
      else if (turn.body) this.socket.send({ type: "message", ...turn.body });
    }
    if (state === "closed") {
      // reconnected at once while an answer streams; otherwise on the next message
      this.hooks.connection(turn?.transport === "ws" ? "Reconnecting…" : "", "wait");
    }
    if (state === "broken") {
      this.hooks.connection("HTTP streaming", "sse");
      if (turn?.transport === "ws" && turn.messageId) this._resumeOverSse(turn, this._lastSeq(turn));
      else if (turn?.transport === "ws" && turn.body) this._postOverSse(turn); // it may not have arrived: same client id
    }
    if (state === "denied") {
      this.hooks.connection("Offline", "bad");
      if (code === 4401) this.hooks.error({ status: 401, code: "not_authenticated" });
      else this.hooks.banner("This chat is not available any more (it may have been deleted). Pick another chat.");
    }
  }

  // --- turns -----------------------------------------------------------------------------------
  _lastSeq(turn) {
    return this.messages.get(turn.key)?.state.lastSeq ?? 0;
  }

  /** Shows the user's message (with its uploaded `files`) and a pending answer at once, before the chat may even exist. */
  begin(content, files = []) {
    const turn = { key: `local-${uuid()}`, messageId: null, transport: null, body: null, content, files, stopRequested: false };
    this.turn = turn;
    this.hooks.streaming(true);
    this.messages.addUser(content, { files });
    this.messages.addAnswer(turn.key, answerFrom({ status: "pending" }));
    return turn;
  }

  /** Sends a begun turn to the open chat, over the socket or else over SSE; `tools` are offered to the model. */
  async dispatch(turn, { jsonMode = false, tools = null } = {}) {
    if (this.turn !== turn) return;
    turn.jsonMode = jsonMode;
    turn.tools = tools;
    turn.round = turn.round ?? 1;
    turn.body = turnBody(this.session, turn);
    if (await this._useSocket()) {
      if (this.turn !== turn) return;
      turn.transport = "ws";
      this.socket.send({ type: "message", ...turn.body });
    } else {
      this._postOverSse(turn);
    }
  }

  /** Follows an answer that was already streaming when the chat was opened, from its first event. */
  async resume(entry) {
    const id = entry.state.id;
    restart(entry.state);
    this.messages.update(entry);
    const turn = { key: id, messageId: id, transport: null, resumed: true };
    this.turn = turn;
    this.hooks.streaming(true);
    if (await this._useSocket()) {
      if (this.turn !== turn) return;
      turn.transport = "ws";
      this.socket.send({ type: "resume", message_id: id, after_seq: 0 });
    } else {
      this._resumeOverSse(turn, 0);
    }
  }

  async stop() {
    const turn = this.turn;
    if (!turn) return;
    if (!turn.messageId) {
      turn.stopRequested = true; // sent as soon as the answer has an id
      return;
    }
    if (turn.transport === "ws" && this.socket?.send({ type: "stop", message_id: turn.messageId })) return;
    try {
      await chatApi.stopMessage(this.session.session_key, turn.messageId);
    } catch (error) {
      if (error.code === "not_running") this._notRunning(turn);
      else {
        this.hooks.streaming(true); // the answer still runs: Stop can be pressed again
        this.hooks.error(error);
      }
    }
  }

  // --- SSE ---------------------------------------------------------------------------------------
  /** Frames for the chat open now only: a stream still running after the user switched chats is ignored. */
  _framesFor(session) {
    return (frame) => {
      if (this.session?.session_key === session.session_key) this.frame(frame);
    };
  }

  _postOverSse(turn) {
    const session = this.session;
    this._overSse(turn, (signal) => sseTurn(session.session_key, turn.body, this._framesFor(session), signal));
  }

  _resumeOverSse(turn, afterSeq) {
    const session = this.session;
    const id = turn.messageId;
    this._overSse(turn, (signal) => sseResume(session.session_key, id, afterSeq, this._framesFor(session), signal));
  }

  async _overSse(turn, open) {
    turn.transport = "sse";
    this.hooks.connection("HTTP streaming", "sse");
    const controller = new AbortController();
    try {
      await open(controller.signal);
    } catch (error) {
      if (error.name === "AbortError" || this.turn !== turn) return;
      if (!turn.messageId && error.code === "turn_in_progress" && error.details?.message_id && turn.body) {
        this._adopt(turn, error.details.message_id); // our message, already being answered: follow it
        this._resumeOverSse(turn, 0);
      } else if (!turn.messageId) {
        this.notSent(turn, error);
      } else {
        this._lost(turn, error);
      }
      return;
    }
    if (this.turn !== turn) return;
    if (turn.messageId && !turn.resumedOnce) {
      turn.resumedOnce = true; // the stream ended before its last event: follow the answer once more
      this._resumeOverSse(turn, this._lastSeq(turn));
    } else {
      this._lost(turn, { code: "disconnected", message: "The connection was lost." });
    }
  }

  // --- endings -----------------------------------------------------------------------------------
  _adopt(turn, messageId) {
    this.messages.rekey(turn.key, messageId);
    turn.key = messageId;
    turn.messageId = messageId;
  }

  _finish(turn) {
    if (this.turn !== turn) return;
    this.turn = null;
    this.hooks.streaming(false);
    if (this.socket?.isOpen) this.hooks.connection("Live", "ok");
    this.hooks.finished();
  }

  /** The turn was refused before its answer started (or its chat could not be created). */
  notSent(turn, error) {
    if (this.turn !== turn) return;
    this.messages.remove(turn.key);
    if (turn.results) this.messages.markResultsNotSent(turn.results, explain(error));
    else this.messages.markLastUserNotSent();
    this.turn = null;
    this.hooks.streaming(false);
    if (isAuthError(error)) this.hooks.error(error);
    else this.hooks.banner(`Not sent: ${explain(error)}`);
    if (!turn.results) this.hooks.notSent(turn.content || "", turn.files || []);
    else this.hooks.finished();
  }

  /**
   * After an answer of `turn` ended with finish_reason tool_calls: when the turn offered the page's
   * tool and every call is one the page runs, runs them, shows the results on the cards, and sends
   * them as the next turn (a pending answer below). Returns false when the page answers nothing
   * (another tool was called, or the round limit): the cards say so and the turn ends.
   */
  _continueWithTools(turn, entry) {
    if (!turn.tools?.length || !turn.body) return false; // not a turn this page offered tools in
    const calls = entry.state.toolCalls.filter((call) => call.status === "called");
    if (!calls.length || !calls.every((call) => runsHere(call.name))) return false;
    if (turn.round >= MAX_TOOL_ROUNDS) {
      this.messages.noteCalls(calls, `not run: the page stops after ${MAX_TOOL_ROUNDS} tool rounds`);
      return false;
    }
    const results = calls.map((call) => ({ ...runLocalTool(call), name: call.name }));
    this.messages.addResults(results);
    const next = {
      key: `local-${uuid()}`,
      messageId: null,
      transport: null,
      body: null,
      content: "",
      results,
      round: turn.round + 1,
      stopRequested: false,
    };
    this.turn = next;
    this.messages.addAnswer(next.key, answerFrom({ status: "pending" }));
    this.dispatch(next, { jsonMode: turn.jsonMode, tools: turn.tools });
    return true;
  }

  _lost(turn, error) {
    const entry = this.messages.get(turn.key);
    if (entry && entry.state.status === "streaming") {
      entry.state.error = { code: error.code, message: error.message };
      this.messages.update(entry);
    }
    this._finish(turn);
  }

  _notRunning(turn) {
    const entry = this.messages.get(turn.key);
    if (entry && entry.state.status === "streaming") {
      entry.state.status = "interrupted";
      entry.state.error = {
        code: "not_running",
        message: "This answer is no longer being generated (the server may have restarted). Reload to see what was saved.",
      };
      this.messages.update(entry);
    }
    this._finish(turn);
  }

  // --- frames ------------------------------------------------------------------------------------
  /** One server frame, from the socket or SSE. */
  frame(frame) {
    if (frame.type === "pong") return;
    if (frame.seq == null) {
      if (frame.type === "error") this._clientError(frame);
      return;
    }
    const id = frame.message_id;
    let entry = this.messages.get(id);
    const turn = this.turn;
    if (!entry && frame.type === "started" && turn && !turn.messageId) {
      this._adopt(turn, id); // our answer has its id
      entry = this.messages.get(id);
      if (turn.stopRequested) this.stop();
    } else if (!entry && frame.type === "started") {
      entry = this.messages.addAnswer(id, answerFrom({ id, status: "streaming" })); // sent from another tab
      if (!turn) {
        this.turn = { key: id, messageId: id, transport: "ws", foreign: true };
        this.hooks.streaming(true);
      }
      this.hooks.reload(); // shows that tab's message; this answer carries over
    }
    if (!entry || !applyFrame(entry.state, frame)) return;
    this.messages.update(entry);
    if (frame.type === "done") this.hooks.servedBy(servedBy(entry.state));
    if (!isTerminal(frame) || !this.follows(id)) return;
    const ending = this.turn;
    if (frame.type === "done" && entry.state.finishReason === "tool_calls" && this._continueWithTools(ending, entry)) return;
    this._finish(ending);
  }

  /** An error about a client frame (no seq): a refused message, a stop with nothing running, a failed resume. */
  _clientError(frame) {
    const turn = this.turn;
    const ours = turn?.body && frame.client_message_id === turn.body.client_message_id;
    if (turn && !turn.messageId && ours && frame.code === "turn_in_progress" && frame.message_id) {
      this._adopt(turn, frame.message_id); // our message, re-sent after a reconnect, already being answered
      this.socket.send({ type: "resume", message_id: turn.messageId, after_seq: 0 });
    } else if (turn && !turn.messageId && (ours || !frame.client_message_id)) {
      this.notSent(turn, frame);
    } else if (turn && frame.code === "not_running") {
      this._notRunning(turn);
    } else if (turn?.resumed && frame.message_id === turn.messageId) {
      this._lost(turn, frame);
      this.hooks.banner(explain(frame));
    } else {
      this.hooks.banner(explain(frame));
    }
  }
}
