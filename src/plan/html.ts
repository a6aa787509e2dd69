import type { Plan } from './plan.js';

export function renderPlanHtml(plan: Plan): string {
  return `<!doctype html><meta charset="utf-8"><title>plan</title><pre>${JSON.stringify(plan.counts)}</pre>`;
}
