// The user's usage this month and what is left of their budget, from GET /api/usage (the session
// cookie); loaded with the page and again after every turn, answered or refused.
// An unknown cost (an answer from a model with no price) is said as unknown, never as $0.

import { api } from "./api.js";

/** "$0.0012", "$1.25"; null (unknown) as "unknown". */
export function formatCost(value) {
  if (value == null) return "unknown";
  const n = Number(value);
  if (n === 0) return "$0";
  if (n >= 0.01) return `$${n.toFixed(2)}`;
  return `$${n.toFixed(8).replace(/0+$/, "")}`;
}

/** A reset time in the reader's time zone, with how far off it is: "Thu, Dec 4, 01:00 AM (in 9 h)". */
export function formatReset(iso) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  const local = at.toLocaleString(undefined, {
    weekday: "short",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
  const minutes = Math.max(1, Math.round((at.getTime() - Date.now()) / 60000));
  const away = minutes < 60 ? `${minutes} min` : minutes < 48 * 60 ? `${Math.round(minutes / 60)} h` : `${Math.round(minutes / 1440)} days`;
  return `${local} (in ${away})`;
}

const number = (n) => Number(n || 0).toLocaleString();

export class UsagePanel {
  constructor(root) {
    this.root = root;
    this.cost = root.querySelector("#usage-cost");
    this.tokens = root.querySelector("#usage-tokens");
    this.budget = root.querySelector("#usage-budget");
    this.meter = root.querySelector("#usage-meter");
    this.budgetText = root.querySelector("#usage-budget-text");
    this.asked = 0;
  }

  /** Reads the figures again; a failure keeps the last ones (usage is shown, not needed). */
  async load() {
    const asked = ++this.asked;
    let report;
    try {
      report = await api("GET", "/api/usage");
    } catch {
      return;
    }
    if (asked === this.asked) this.render(report);
  }

  render(report) {
    const totals = report.totals;
    const unknown = totals.cost_unknown_turns;
    let cost = totals.cost == null ? (unknown ? "cost unknown" : "$0") : formatCost(totals.cost);
    if (totals.cost != null && unknown) cost += ` + ${unknown} answer${unknown === 1 ? "" : "s"} of unknown price`;
    this.cost.textContent = cost;
    this.tokens.textContent = `${number(totals.input_tokens + totals.output_tokens)} tokens (${number(totals.input_tokens)} in, ${number(totals.output_tokens)} out) in ${number(totals.turns)} answer${totals.turns === 1 ? "" : "s"}`;
    Object.assign(this.root.dataset, {
      turns: totals.turns,
      cost: totals.cost ?? "",
      inputTokens: totals.input_tokens,
      outputTokens: totals.output_tokens,
    });
    this.renderBudget((report.budgets || []).find((b) => b.scope === "user"));
    this.root.hidden = false;
  }

  renderBudget(budget) {
    this.budget.hidden = !budget;
    if (!budget) return;
    const amount = Number(budget.amount);
    const used = Number(budget.spent) + Number(budget.reserved);
    this.meter.max = amount || 1;
    this.meter.value = Math.min(used, amount);
    const left = Number(budget.remaining) > 0;
    const per = budget.period === "none" ? "" : ` per ${budget.period}`;
    const reset = budget.resets_at ? ` · resets ${formatReset(budget.resets_at)}` : " · does not reset";
    this.budgetText.textContent = left
      ? `${formatCost(budget.remaining)} left of your ${formatCost(budget.amount)}${per} budget${reset}`
      : `Your ${formatCost(budget.amount)}${per} budget is used up${reset}`;
    this.budget.classList.toggle("over", !left);
    Object.assign(this.root.dataset, { remaining: budget.remaining, resetsAt: budget.resets_at ?? "" });
  }
}
