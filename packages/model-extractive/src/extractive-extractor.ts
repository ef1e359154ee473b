import {
  type ContextDraft,
  ContextDraftSchema,
  type ContextExtractor,
  ExtractionError,
  type ExtractionRequest,
  type ExtractionResult,
  LIMITS,
  type Message,
  ValidationError,
} from '@ctx/core';

/** Options of {@link createExtractiveExtractor}. */
export interface ExtractiveExtractorOptions {
  /**
   * The most sentences the summary keeps. The summary never grows past this, however long the
   * conversation: new sentences compete with the previous summary's sentences for these slots.
   * An integer from 1 to 200.
   * @default 6
   */
  maxSummarySentences?: number;
  /**
   * The most characters the summary holds, speaker labels and spaces included. Sentences that do
   * not fit are left out; a single sentence longer than the budget is shortened at a word boundary
   * and marked with `…`. An integer from 80 to {@link LIMITS}`.summaryMaxLength`.
   * @default 1200
   */
  maxSummaryChars?: number;
}

type Speaker = 'user' | 'assistant' | 'tool';

const DEFAULT_MAX_SENTENCES = 6;
const DEFAULT_MAX_CHARS = 1200;
const MAX_SENTENCE_CHARS = 320;
const MAX_GOAL_CHARS = 200;
const MAX_STEP_CHARS = 120;
const LONG_STEP_CHARS = 60;
// Sentences longer than this are still summarised, but never searched for goals or completions:
// keeps every pattern linear on huge pastes.
const MAX_PATTERN_CHARS = 1000;

const LABELS: Record<Speaker, string> = { user: 'User', assistant: 'Assistant', tool: 'Tool' };
const LABEL_PATTERN = /^(User|Assistant|Tool):\s+/;

// Weights of the summary score. Only their ratios matter.
const PREVIOUS_WEIGHT = 0.6;
const OLDEST_TURN_WEIGHT = 0.7;
const TOOL_WEIGHT = 0.5;
const FILLER_WEIGHT = 0.3;
const LIST_ITEM_WEIGHT = { planning: 0.3, summary: 0.8 } as const;
const SPECIAL_WEIGHT = 1.5;
const DECISION_BONUS = 2;
const QUESTION_BONUS = 2;
const OBJECTIVE_BONUS = 4;
const MAX_INSTRUCTION_BONUS = 3;
// Below this a sentence is noise ("Hope this helps!") and never fills a free slot.
const MIN_SCORE = 2.5;

const STOPWORDS = new Set(
  `a about above after again against all also am an and any are as at be because been before being
  below between both but by can could did do does doing done down during each else etc even ever
  every few for from further get gets getting got had has have having he her here hers herself him
  himself his how however i i'd i'll i'm i've if in into is isn't it it's its itself just let let's
  like lot made make may me might more most much must my myself need no nor not now of off ok okay
  on once one only or other our ours ourselves out over own please quite rather really same she
  should so some something anything such sure than thank thanks that that's the their theirs them
  themselves then there there's these they this those through to too under until up us very want
  was we we'll we're we've were what what's when where which while who whom why will with would
  yes yet you you'd you'll you're you've your yours yourself yourselves step steps thing things way
  well go going able e.g i.e here's let's don't can't won't didn't doesn't`.split(/\s+/),
);

const DECISION_PATTERN =
  /\b(?:decided?|decision|chose|chosen|choose|go(?:ing)? with|use|using|prefer(?:red|s)?|because|since|recommend(?:ed|s)?|instead|opted|agreed|settled|should|must)\b/i;
const FILLER_PATTERN =
  /^(?:sure|of course|great|thanks|thank you|hope this helps|i hope this helps|let me know|happy to help|good question|great question|absolutely|certainly|no problem|you're welcome|glad|feel free|sounds good|perfect|awesome|cool|nice|got it|makes sense)\b/i;
const ABBREVIATIONS = new Set(['e.g', 'i.e', 'etc', 'vs', 'mr', 'mrs', 'ms', 'dr', 'approx', 'cf']);

/** A sentence competing for a place in the summary. */
interface Candidate {
  text: string;
  speaker: Speaker | null;
  order: number;
  score: number;
  keys: Set<string>;
}

/** A sentence of a message, with where it came from. */
interface Segment {
  text: string;
  listItem: boolean;
}

// ---------------------------------------------------------------------------------------------
// Text helpers

function normalizeQuotes(text: string): string {
  return text.replace(/[\u2018\u2019\u02BC]/g, "'").replace(/[\u201C\u201D]/g, '"');
}

// Output must be storable everywhere: no NUL, no lone surrogates.
function toStorable(text: string): string {
  return text
    .replace(/\u0000/g, '')
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = text.lastIndexOf(' ', max - 1);
  if (end < max * 0.6) end = max - 1;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return `${text.slice(0, end).trimEnd()}…`;
}

// The same key core's update policy compares plan and progress steps by.
function stepKey(step: string): string {
  return step.replace(/\s+/g, ' ').trim().toLowerCase();
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function stripInlineMarkdown(text: string): string {
  return text
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\*\*|__|~~|`/g, '')
    .replace(/(^|[\s(])\*(\S(?:[^*]*\S)?)\*(?=$|[\s).,;:!?])/g, '$1$2')
    .replace(/\s+/g, ' ')
    .trim();
}

function tokens(text: string): string[] {
  return (text.match(/[\p{L}\p{N}_$@#/{}][\p{L}\p{N}_$@#/{}.:'-]*/gu) ?? []).map((token) =>
    token.replace(/[.:'-]+$/, ''),
  );
}

function wordKey(word: string): string {
  return word.toLowerCase().replace(/'s$/, '');
}

function isSpecialToken(token: string, index: number): boolean {
  if (token.length < 2) return false;
  if (/\d/.test(token) || /^[A-Z]{2,}$/.test(token) || /[a-z][A-Z]/.test(token)) return true;
  if (/[_./:#@{}$]/.test(token.slice(1))) return true;
  return index > 0 && /^\p{Lu}\p{Ll}+$/u.test(token) && !STOPWORDS.has(token.toLowerCase());
}

function contentKeys(text: string): Set<string> {
  const keys = new Set<string>();
  tokens(text).forEach((token, index) => {
    const key = wordKey(token);
    if (STOPWORDS.has(key)) return;
    if (key.length >= 3 || isSpecialToken(token, index)) keys.add(key);
  });
  return keys;
}

function splitSentences(paragraph: string): string[] {
  const sentences: string[] = [];
  let start = 0;
  for (const match of paragraph.matchAll(/[.!?…]+["')\]]*\s+/g)) {
    const end = match.index + match[0].length;
    const next = paragraph.charAt(end);
    if (next && !/[\p{Lu}\p{N}"'(["`*]/u.test(next)) continue;
    const sentence = paragraph.slice(start, match.index + match[0].trimEnd().length);
    if (match[0].startsWith('.')) {
      const lastWord = /([\p{L}.]+)\.$/u.exec(sentence.slice(-12))?.[1]?.toLowerCase();
      if (lastWord && (ABBREVIATIONS.has(lastWord) || /^\p{L}$/u.test(lastWord))) continue;
    }
    sentences.push(sentence.trim());
    start = end;
  }
  sentences.push(paragraph.slice(start).trim());
  return sentences.filter(Boolean);
}

function withFullStop(sentence: string): string {
  return /[.!?…]["')\]]*$/.test(sentence) ? sentence : `${sentence.replace(/[:;,]+$/, '')}.`;
}

const NUMBERED_ITEM = /^(\s*)(\d{1,3})[.)]\s+(.*\S.*)$/;
const STEP_ITEM =
  /^(\s*)(?:#{1,6}\s*)?(?:\*\*|__)?step\s+(\d{1,3})\s*(?:[.):\-–—]|\*\*|__)+\s*(.*\S.*)$/i;
const BULLET_ITEM = /^(\s*)[-*•+]\s+(.*\S.*)$/;
const RULE_LINE = /^\s*(?:[-*_]\s*){3,}$/;

interface ListItem {
  kind: 'numbered' | 'bullet';
  indent: number;
  number: number;
  text: string;
}

function matchListItem(line: string): ListItem | null {
  if (RULE_LINE.test(line)) return null;
  const step = STEP_ITEM.exec(line) ?? NUMBERED_ITEM.exec(line);
  if (step) {
    return {
      kind: 'numbered',
      indent: (step[1] ?? '').length,
      number: Number(step[2]),
      text: step[3] ?? '',
    };
  }
  const bullet = BULLET_ITEM.exec(line);
  if (bullet) {
    return { kind: 'bullet', indent: (bullet[1] ?? '').length, number: 0, text: bullet[2] ?? '' };
  }
  return null;
}

function withoutCodeBlocks(content: string): string {
  return content.replace(/```[\s\S]*?(?:```|$)/g, '\n');
}

/**
 * Splits a message into sentences: paragraphs are split at sentence ends, list items stand alone
 * (without their marker, unless `keepStepLabels` and the marker is a "Step N:" label).
 */
function toSegments(content: string, keepStepLabels = false): Segment[] {
  const segments: Segment[] = [];
  let paragraph: string[] = [];
  const flush = () => {
    if (paragraph.length === 0) return;
    for (const text of splitSentences(stripInlineMarkdown(paragraph.join(' ')))) {
      segments.push({ text, listItem: false });
    }
    paragraph = [];
  };
  for (const line of withoutCodeBlocks(normalizeQuotes(toStorable(content))).split(/\r?\n/)) {
    const trimmed = line.trim();
    if (!trimmed || /^#{1,6}\s/.test(trimmed) || trimmed.startsWith('|') || RULE_LINE.test(line)) {
      flush();
      continue;
    }
    const item = matchListItem(line);
    if (item) {
      flush();
      const text =
        keepStepLabels && STEP_ITEM.test(line) ? trimmed.replace(/^#+\s*/, '') : item.text;
      for (const sentence of splitSentences(stripInlineMarkdown(text))) {
        segments.push({ text: sentence, listItem: true });
      }
      continue;
    }
    paragraph.push(trimmed.replace(/^>\s?/, ''));
  }
  flush();
  return segments;
}

// ---------------------------------------------------------------------------------------------
// Goal

interface Objective {
  tier: number;
  goal: string;
}

const LEAD_IN = String.raw`^(?:(?:hi|hey|hello|ok|okay|so|now|well|alright|basically|also|and)[,!]?\s+)*`;
const ING_VERBS: Record<string, string> = {
  designing: 'Design',
  redesigning: 'Redesign',
  building: 'Build',
  creating: 'Create',
  writing: 'Write',
  rewriting: 'Rewrite',
  developing: 'Develop',
  implementing: 'Implement',
  planning: 'Plan',
  'setting up': 'Set up',
  migrating: 'Migrate',
  'working on': 'Work on',
  making: 'Make',
  refactoring: 'Refactor',
  deploying: 'Deploy',
  preparing: 'Prepare',
  organizing: 'Organize',
  organising: 'Organise',
  learning: 'Learn',
  launching: 'Launch',
  upgrading: 'Upgrade',
  automating: 'Automate',
  configuring: 'Configure',
  porting: 'Port',
  optimizing: 'Optimize',
  'putting together': 'Put together',
};
const ING_ALTERNATION = Object.keys(ING_VERBS).join('|');
const NOT_AN_OBJECTIVE =
  /^(?:know|ask|say|tell|thank|mention|clarify|confirm|check|see|be sure|add that|point out)\b/i;

// Tier 0 replaces an existing goal; tiers 1 and 2 only set a goal when there is none.
const OBJECTIVE_PATTERNS: {
  tier: number;
  pattern: RegExp;
  verb?: (match: RegExpExecArray) => string;
}[] = [
  {
    tier: 0,
    pattern:
      /\b(?:my|our|the)\s+(?:new\s+|main\s+|overall\s+|actual\s+|real\s+|end\s+|ultimate\s+|final\s+)?(?:goal|objective|aim)\s+(?:now\s+|here\s+)?(?:is|will be)(?:\s+now)?\s*:?\s*(?:to\s+)?(.+)/i,
  },
  { tier: 0, pattern: /\bnew\s+(?:goal|objective)\s*(?:is\s*)?:\s*(?:to\s+)?(.+)/i },
  {
    tier: 0,
    pattern:
      /\b(?:instead|actually|change of plans?|scratch that|forget that)\b[,:;.!-]*\s*(?:I|we)\s+(?:now\s+)?(?:want|need|would like|'d like|wish)\s+to\s+(.+)/i,
  },
  {
    tier: 1,
    pattern: new RegExp(
      `${LEAD_IN}(?:(?:can|could|would|will)\\s+you\\s+)?(?:please\\s+)?help\\s+(?:me|us)\\s+(?:to\\s+)?(.+)`,
      'i',
    ),
  },
  {
    tier: 1,
    pattern: new RegExp(
      `${LEAD_IN}(?:I|we)\\s*(?:really\\s+|just\\s+)?(?:want|wanna|would like|'d like|wish|hope|intend|plan|am trying|'m trying|are trying|'re trying|am planning|'m planning|are planning|'re planning|am looking|'m looking|are looking|'re looking)\\s+to\\s+(.+)`,
      'i',
    ),
  },
  {
    tier: 1,
    pattern: new RegExp(
      `${LEAD_IN}(?:I|we)(?:'m|\\s+am|'re|\\s+are)\\s+(?:currently\\s+|now\\s+|just\\s+)?(${ING_ALTERNATION})\\s+(.+)`,
      'i',
    ),
    verb: (match) => ING_VERBS[(match[1] ?? '').toLowerCase().replace(/\s+/g, ' ')] ?? '',
  },
  {
    tier: 2,
    pattern: new RegExp(`${LEAD_IN}(?:I|we)\\s+(?:need|have|must|got)\\s+to\\s+(.+)`, 'i'),
  },
  {
    tier: 2,
    pattern: new RegExp(
      `${LEAD_IN}let(?:'s|\\s+us)\\s+(?!(?:see|go|continue|move|proceed|start|begin|do|try|look|talk|get started|keep|discuss|recap|review|check|wait|think|focus|say|assume|now)\\b)(.+)`,
      'i',
    ),
  },
];

function toGoalText(raw: string, verb: string | undefined): string | null {
  let text = raw
    .replace(/\s+/g, ' ')
    .replace(/[.!?…]+$/, '')
    .replace(/,?\s*(?:please|thanks|thank you|if possible|if you can)$/i, '')
    .trim();
  if (!verb && NOT_AN_OBJECTIVE.test(text)) return null;
  if (!verb && /^with\s/i.test(text)) text = `get help ${text}`;
  if (verb) text = `${verb} ${text}`;
  if (/\bsteps?\s+(?:\d|one|two|three)\b/i.test(text)) return null;
  if (tokens(text).length < 2 || contentKeys(text).size === 0) return null;
  return clip(capitalize(text), MAX_GOAL_CHARS);
}

function findObjective(sentence: string): Objective | null {
  if (sentence.length > MAX_PATTERN_CHARS) return null;
  for (const { tier, pattern, verb } of OBJECTIVE_PATTERNS) {
    const match = pattern.exec(sentence);
    if (!match) continue;
    const goal = toGoalText(match[verb ? 2 : 1] ?? '', verb?.(match));
    if (goal) return { tier, goal };
  }
  return null;
}

function extractGoal(messages: readonly Message[], previousGoal: string | null): string | null {
  const maxTier = previousGoal ? 0 : 2;
  let best: (Objective & { message: number }) | null = null;
  messages.forEach((message, index) => {
    if (message.role !== 'user') return;
    for (const segment of toSegments(message.content)) {
      const objective = findObjective(segment.text);
      if (!objective || objective.tier > maxTier) continue;
      if (
        !best ||
        objective.tier < best.tier ||
        (objective.tier === best.tier && index > best.message)
      ) {
        best = { ...objective, message: index };
      }
      break;
    }
  });
  return (best as Objective | null)?.goal ?? previousGoal;
}

// ---------------------------------------------------------------------------------------------
// Plan

const PLAN_INTENT =
  /\b(?:plan|steps|roadmap|outline|checklist|revised?|revision|instead|start over|from scratch|new approach|different approach)\b/i;

function toStepText(raw: string): string {
  let text = raw.trim();
  const bold = /^(?:\*\*|__)(.+?)(?:\*\*|__)(.*)$/.exec(text);
  const headline = bold?.[1]?.replace(/[:.\-–—\s]+$/, '').trim();
  if (
    headline &&
    contentKeys(headline).size > 0 &&
    /^(?:\s*$|\s*[:.\-–—(]|\s)/.test(bold?.[2] ?? '')
  ) {
    text = stripInlineMarkdown(headline);
  } else {
    text = stripInlineMarkdown(text);
    if (text.length > LONG_STEP_CHARS) {
      const separator = /(?::\s|\s[-–—]\s)/.exec(text);
      if (separator && separator.index >= 3 && separator.index <= MAX_STEP_CHARS) {
        text = text.slice(0, separator.index);
      }
    }
    if (text.length > MAX_STEP_CHARS) {
      const sentenceEnd = /[.!?]\s/.exec(text);
      if (sentenceEnd && sentenceEnd.index >= 10 && sentenceEnd.index < MAX_STEP_CHARS) {
        text = text.slice(0, sentenceEnd.index);
      }
    }
  }
  return capitalize(clip(text.replace(/[\s:;,.]+$/, ''), MAX_STEP_CHARS));
}

interface ListBlock {
  kind: 'numbered' | 'bullet';
  indent: number;
  last: number;
  items: string[];
  leadIn: string;
}

/** The first numbered list of a message with ≥2 items, else the first bulleted one. */
function findList(content: string): ListBlock | null {
  const blocks: ListBlock[] = [];
  let block: ListBlock | null = null;
  const before: string[] = [];
  for (const line of withoutCodeBlocks(normalizeQuotes(toStorable(content))).split(/\r?\n/)) {
    if (!line.trim()) continue;
    const item = matchListItem(line);
    const indent = (/^\s*/.exec(line)?.[0] ?? '').length;
    if (item) {
      if (block) {
        const sameLevel = Math.abs(item.indent - block.indent) <= 1;
        if (
          sameLevel &&
          item.kind === block.kind &&
          (item.kind === 'bullet' || item.number === block.last + 1)
        ) {
          block.items.push(item.text);
          block.last = item.number;
          continue;
        }
        if (
          item.indent > block.indent + 1 ||
          (block.kind === 'numbered' && item.kind === 'bullet')
        ) {
          continue;
        }
        blocks.push(block);
      }
      block = {
        kind: item.kind,
        indent: item.indent,
        last: item.number,
        items: [item.text],
        leadIn: before.join(' '),
      };
      continue;
    }
    if (block && (indent > block.indent || block.kind === 'numbered')) continue;
    if (block) blocks.push(block);
    block = null;
    before.push(line.trim());
  }
  if (block) blocks.push(block);
  const lists = blocks.filter((candidate) => candidate.items.length >= 2);
  return (
    lists.find((candidate) => candidate.kind === 'numbered') ??
    lists.find((candidate) => candidate.kind === 'bullet') ??
    null
  );
}

function hasPlanIntent(text: string): boolean {
  return PLAN_INTENT.test(text.replace(/\bnext\s+steps?\b/gi, '').replace(/\bsteps?\s+\d+/gi, ''));
}

/** The plan after these messages, and the index of the message that proposed it (-1: kept). */
function extractPlan(
  messages: readonly Message[],
  previousPlan: string[] | null,
): { plan: string[] | null; proposedAt: number } {
  for (let index = messages.length - 1; index >= 0; index -= 1) {
    const message = messages[index] as Message;
    if (message.role !== 'assistant') continue;
    const list = findList(message.content);
    if (!list) continue;
    if (previousPlan && previousPlan.length > 0) {
      const request = messages
        .slice(0, index)
        .findLast((candidate) => candidate.role === 'user')?.content;
      if (!hasPlanIntent(list.leadIn) && !hasPlanIntent(request ?? '')) continue;
    }
    const seen = new Set<string>();
    const steps: string[] = [];
    for (const raw of list.items) {
      const step = toStorable(toStepText(raw));
      const key = step.toLowerCase();
      if (!step || seen.has(key)) continue;
      seen.add(key);
      steps.push(step);
    }
    if (steps.length >= 2) return { plan: steps.slice(0, LIMITS.planMaxSteps), proposedAt: index };
  }
  return { plan: previousPlan ? [...previousPlan] : null, proposedAt: -1 };
}

// ---------------------------------------------------------------------------------------------
// Progress

const NUMBER_WORDS: Record<string, number> = {
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
};
const ORDINALS: Record<string, number> = {
  first: 1,
  second: 2,
  third: 3,
  fourth: 4,
  fifth: 5,
  sixth: 6,
  seventh: 7,
  eighth: 8,
  ninth: 9,
  tenth: 10,
};
const NUM = `(?:\\d{1,3}|${Object.keys(NUMBER_WORDS).join('|')})`;
const ORDINAL = `(?:${Object.keys(ORDINALS).join('|')}|last|final)`;
const STEP_REF = [
  `(?:the\\s+)?first\\s+${NUM}\\s+steps`,
  `(?:the\\s+)?${ORDINAL}\\s+step`,
  `steps?\\s+#?${NUM}(?:\\s*(?:,|and|&|to|through|-|–)\\s*(?:and\\s+)?(?:steps?\\s+)?#?${NUM})*`,
  `(?:all|every|each)(?:\\s+of)?(?:\\s+the)?(?:\\s+(?:\\d{1,3}|${Object.keys(NUMBER_WORDS).join('|')}))?\\s+steps?`,
].join('|');
const DONE_WORD = '(?:done|finished|complete|completed)';
const NOT_BY_MEANS = String.raw`(?!\s+(?:by|using|via|with|through|in|on|for)\b)`;
const STEP_COMPLETIONS = [
  new RegExp(
    `\\b(?:done|finished|through|complete|completed|did|wrapped up|checked off|ticked off|knocked out)\\s+(?:with\\s+)?(${STEP_REF})`,
    'i',
  ),
  new RegExp(
    `(${STEP_REF})\\s*(?:(?:is|are|'s|has been|have been|was|were)\\s+)?(?:now\\s+|all\\s+|already\\s+|finally\\s+|fully\\s+)?[:\\-–—]?\\s*(?:${DONE_WORD}|✓|✅)(?![\\w])${NOT_BY_MEANS}`,
    'i',
  ),
];
const TEXT_COMPLETIONS = [
  /^(?:(?:ok(?:ay)?|so|great|alright|good news|update)[,!:]?\s+)?(?:(?:i|we)(?:'ve|\s+have|'m|\s+am|'re|\s+are)?\s+)?(?:just\s+|now\s+|finally\s+|already\s+|successfully\s+)?(?:done|finished|completed|wrapped up)\s+(?:with\s+)?(.+)$/i,
  new RegExp(
    `^(?:(?:ok(?:ay)?|so|great|alright|good news|update)[,!:]?\\s+)?(.+?)\\s+(?:is|are|has been|have been)\\s+(?:now\\s+|all\\s+|already\\s+|finally\\s+|fully\\s+)?${DONE_WORD}\\b${NOT_BY_MEANS}`,
    'i',
  ),
];
const MENTIONS_STEP = new RegExp(`\\b(?:${STEP_REF})\\b`, 'i');
const FIRST_N_STEPS = new RegExp(`^(?:the\\s+)?first\\s+(${NUM})\\s+steps`);
const ORDINAL_STEP = new RegExp(`^(?:the\\s+)?(${ORDINAL})\\s+step`);
const NUMBER_OR_RANGE = new RegExp(`(${NUM})|(to|through|-|–)`, 'g');
const NOT_A_COMPLETION =
  /(?:\bnot\b|n't\b|\bnever\b|\bnearly\b|\balmost\b|\byet to\b|\bcannot\b|\bno longer\b|\bonce\b|\bafter\b|\bwhen(?:ever)?\b|\bif\b|\bbefore\b|\buntil\b|\bunless\b|\bas soon as\b|\b(?:will|would|should|could|can|might|may|must|to)\s+(?:be\s+|have\s+)?(?:done|finished|complete|completed)\b)/i;

function parseNumber(word: string): number {
  return NUMBER_WORDS[word.toLowerCase()] ?? Number(word);
}

function stepNumbers(reference: string, planLength: number): number[] {
  const text = reference.toLowerCase();
  if (/^(?:all|every|each)\b/.test(text)) {
    return Array.from({ length: planLength }, (_, index) => index + 1);
  }
  const firstN = FIRST_N_STEPS.exec(text);
  if (firstN) {
    return Array.from({ length: parseNumber(firstN[1] ?? '0') }, (_, index) => index + 1);
  }
  const ordinal = ORDINAL_STEP.exec(text);
  if (ordinal) {
    const word = ordinal[1] ?? '';
    return [word === 'last' || word === 'final' ? planLength : (ORDINALS[word] ?? 0)];
  }
  const numbers: number[] = [];
  let rangeStart: number | null = null;
  for (const match of text.matchAll(NUMBER_OR_RANGE)) {
    if (match[2]) {
      rangeStart = numbers.at(-1) ?? null;
      continue;
    }
    const value = parseNumber(match[1] ?? '');
    if (rangeStart !== null && value > rangeStart && value - rangeStart <= LIMITS.planMaxSteps) {
      for (let number = rangeStart + 1; number <= value; number += 1) numbers.push(number);
    } else {
      numbers.push(value);
    }
    rangeStart = null;
  }
  return numbers;
}

function singular(word: string): string {
  return word.length > 4 ? word.replace(/(?:es|s)$/, '') : word;
}

function commonPrefix(left: string, right: string): number {
  let length = 0;
  while (length < left.length && length < right.length && left[length] === right[length]) {
    length += 1;
  }
  return length;
}

function wordSimilarity(left: string, right: string): number {
  if (left === right || singular(left) === singular(right)) return 1;
  const [shorter, longer] = left.length <= right.length ? [left, right] : [right, left];
  const prefix = commonPrefix(shorter, longer);
  if (prefix >= 5) return 0.8;
  if (shorter.length >= 3 && prefix === shorter.length && longer.length - shorter.length <= 3) {
    return 0.8;
  }
  return 0;
}

// Share of the statement's content words found in the step; steps are compared by that, then by
// how much of the step the statement covers.
function matchStep(phrase: string, plan: readonly string[]): number | null {
  const words = [...contentKeys(phrase)];
  if (words.length === 0) return null;
  let best: { index: number; score: number; coverage: number } | null = null;
  let tied = false;
  plan.forEach((step, index) => {
    const stepWords = [...contentKeys(step)];
    if (stepWords.length === 0) return;
    const matched = words.reduce(
      (sum, word) => sum + Math.max(0, ...stepWords.map((other) => wordSimilarity(word, other))),
      0,
    );
    const score = matched / words.length;
    if (matched < 0.8 || score < 0.5) return;
    const coverage = matched / stepWords.length;
    if (!best || score > best.score || (score === best.score && coverage > best.coverage)) {
      best = { index, score, coverage };
      tied = false;
    } else if (score === best.score && coverage === best.coverage) {
      tied = true;
    }
  });
  const found = best as { index: number } | null;
  return found && !tied ? found.index : null;
}

function completedIndexes(sentence: string, plan: readonly string[]): number[] {
  const text = sentence.trim();
  if (text.length > MAX_PATTERN_CHARS || text.endsWith('?') || NOT_A_COMPLETION.test(text))
    return [];
  const byNumber = new Set<number>();
  let referencesSteps = false;
  for (const pattern of STEP_COMPLETIONS) {
    const match = pattern.exec(text);
    if (!match) continue;
    referencesSteps = true;
    for (const number of stepNumbers(match[1] ?? '', plan.length)) {
      if (Number.isInteger(number) && number >= 1 && number <= plan.length)
        byNumber.add(number - 1);
    }
  }
  if (referencesSteps || MENTIONS_STEP.test(text)) return [...byNumber];
  for (const pattern of TEXT_COMPLETIONS) {
    const match = pattern.exec(text.replace(/[.!…]+$/, ''));
    if (!match) continue;
    const phrase =
      (match[1] ?? '').split(/\s*(?:[,;]|\s[-–—]\s|\b(?:but|so|because|and then)\b)\s*/)[0] ?? '';
    const index = matchStep(phrase, plan);
    if (index !== null) return [index];
  }
  return [];
}

// A statement made before the new plan was proposed refers to the plan of that moment; what it
// completed stays completed only if the new plan still has that step.
function extractProgress(
  messages: readonly Message[],
  current: { plan: string[] | null; proposedAt: number },
  previous: { plan: string[] | null; progress: string[] | null },
): string[] | null {
  if (!current.plan) return null;
  const done = new Set((previous.progress ?? []).map(stepKey));
  messages.forEach((message, index) => {
    if (message.role !== 'user' && message.role !== 'assistant') return;
    const plan = index <= current.proposedAt ? previous.plan : current.plan;
    if (!plan || plan.length === 0) return;
    for (const segment of toSegments(message.content, true)) {
      for (const step of completedIndexes(segment.text, plan)) done.add(stepKey(plan[step] ?? ''));
    }
  });
  return current.plan.filter((step) => done.has(stepKey(step)));
}

// ---------------------------------------------------------------------------------------------
// Summary

interface ScoreContext {
  planning: boolean;
  instructionKeys: Set<string>;
}

function scoreSentence(
  text: string,
  speaker: Speaker | null,
  listItem: boolean,
  context: ScoreContext,
): { score: number; objective: boolean } {
  const words = tokens(text);
  const keys = contentKeys(text);
  if (words.length < 2 || keys.size === 0) return { score: 0, objective: false };
  const specials = new Set(
    words.filter((word, index) => isSpecialToken(word, index)).map((word) => wordKey(word)),
  );
  let score = Math.min(keys.size, 15) + SPECIAL_WEIGHT * Math.min(specials.size, 6);
  if (DECISION_PATTERN.test(text)) score += DECISION_BONUS;
  if (speaker === 'user' && text.endsWith('?')) score += QUESTION_BONUS;
  const objective = speaker === 'user' && findObjective(text) !== null;
  if (objective) score += OBJECTIVE_BONUS;
  let shared = 0;
  for (const key of keys) if (context.instructionKeys.has(key)) shared += 1;
  score += Math.min(shared, MAX_INSTRUCTION_BONUS);
  if (words.length > 40) score *= 40 / words.length;
  if (FILLER_PATTERN.test(text)) score *= FILLER_WEIGHT;
  if (score < MIN_SCORE) return { score: 0, objective: false };
  if (speaker === 'tool') score *= TOOL_WEIGHT;
  if (listItem) score *= context.planning ? LIST_ITEM_WEIGHT.planning : LIST_ITEM_WEIGHT.summary;
  return { score, objective };
}

function similarity(left: Set<string>, right: Set<string>): number {
  let shared = 0;
  for (const key of left) if (right.has(key)) shared += 1;
  const union = left.size + right.size - shared;
  const jaccard = union === 0 ? 1 : shared / union;
  const smaller = Math.min(left.size, right.size);
  const containment = smaller === 0 ? 0 : shared / smaller;
  return smaller >= 3 ? Math.max(jaccard, containment >= 0.9 ? containment : 0) : jaccard;
}

function previousCandidates(summary: string, context: ScoreContext): Candidate[] {
  const candidates: Candidate[] = [];
  let speaker: Speaker | null = null;
  const sentences = splitSentences(
    toStorable(normalizeQuotes(summary)).replace(/\s+/g, ' ').trim(),
  );
  for (const raw of sentences) {
    const label = LABEL_PATTERN.exec(raw);
    if (label) speaker = (label[1] ?? '').toLowerCase() as Speaker;
    const text = clip(
      withFullStop(raw.slice(label ? label[0].length : 0).trim()),
      MAX_SENTENCE_CHARS,
    );
    const { score, objective } = scoreSentence(text, speaker, false, context);
    if (score === 0) continue;
    candidates.push({
      text,
      speaker,
      order: candidates.length,
      // The user's stated objective is what the summary is about: it does not age.
      score: objective ? score : score * PREVIOUS_WEIGHT,
      keys: contentKeys(text),
    });
  }
  return candidates;
}

function messageCandidates(
  messages: readonly Message[],
  firstOrder: number,
  context: ScoreContext,
): Candidate[] {
  const turns: number[] = [];
  let turn = 0;
  let seenUser = false;
  for (const message of messages) {
    if (message.role === 'user') {
      if (seenUser) turn += 1;
      seenUser = true;
    }
    turns.push(turn);
  }
  const lastTurn = turn;
  const candidates: Candidate[] = [];
  let order = firstOrder;
  messages.forEach((message, index) => {
    const speaker = message.role;
    if (speaker === 'system') return;
    if (speaker === 'tool' && /^\s*[[{]/.test(message.content)) return;
    const recency =
      lastTurn === 0
        ? 1
        : OLDEST_TURN_WEIGHT + (1 - OLDEST_TURN_WEIGHT) * ((turns[index] ?? 0) / lastTurn);
    for (const segment of toSegments(message.content)) {
      const text = clip(withFullStop(segment.text), MAX_SENTENCE_CHARS);
      const { score } = scoreSentence(text, speaker, segment.listItem, context);
      if (score === 0) continue;
      candidates.push({ text, speaker, order, score: score * recency, keys: contentKeys(text) });
      order += 1;
    }
  });
  return candidates;
}

function assembleSummary(chosen: readonly Candidate[]): string {
  const parts: string[] = [];
  let speaker: Speaker | null = null;
  for (const candidate of [...chosen].sort((left, right) => left.order - right.order)) {
    const label = candidate.speaker !== null && candidate.speaker !== speaker;
    parts.push(
      label ? `${LABELS[candidate.speaker as Speaker]}: ${candidate.text}` : candidate.text,
    );
    speaker = candidate.speaker;
  }
  return parts.join(' ');
}

function buildSummary(
  request: ExtractionRequest,
  messages: readonly Message[],
  limits: { sentences: number; chars: number },
): string {
  const context: ScoreContext = {
    planning: request.planning,
    instructionKeys: contentKeys(request.instructions ?? ''),
  };
  const previous = previousCandidates(request.previous?.summary ?? '', context);
  const candidates = [...previous, ...messageCandidates(messages, previous.length, context)].sort(
    (left, right) => right.score - left.score || right.order - left.order,
  );
  const maxSentenceChars = Math.min(MAX_SENTENCE_CHARS, limits.chars - LABELS.assistant.length - 2);
  const chosen: Candidate[] = [];
  let used = 0;
  for (const candidate of candidates) {
    if (chosen.length >= limits.sentences) break;
    const text = clip(candidate.text, maxSentenceChars);
    if (used + text.length + 1 > limits.chars) continue;
    if (chosen.some((other) => similarity(other.keys, candidate.keys) >= 0.6)) continue;
    chosen.push({ ...candidate, text });
    used += text.length + 1;
  }
  let summary = assembleSummary(chosen);
  // Speaker labels were not counted above; drop the weakest sentences until the labels fit too.
  while (summary.length > limits.chars && chosen.length > 0) {
    chosen.pop();
    summary = assembleSummary(chosen);
  }
  return summary;
}

// ---------------------------------------------------------------------------------------------
// Extractor

function readLimit(
  value: number | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(
      'INVALID_CONFIG',
      `Invalid extractive extractor options: ${name} must be an integer from ${min} to ${max}, got ${String(value)}`,
      { issues: [{ path: name, message: `must be an integer from ${min} to ${max}` }] },
    );
  }
  return value;
}

function estimateInputTokens(request: ExtractionRequest): number {
  let chars = (request.previous?.summary.length ?? 0) + (request.instructions?.length ?? 0);
  chars += request.previous?.goal?.length ?? 0;
  for (const step of request.previous?.plan ?? []) chars += step.length;
  for (const message of request.messages) chars += message.content.length;
  return Math.ceil(chars / 4);
}

/**
 * Creates a {@link ContextExtractor} that needs no model: it builds the next snapshot by picking
 * sentences out of the conversation. Meant for offline use, tests and demos — a baseline to
 * compare models against, not a substitute for one. It copies sentences, it never rephrases them.
 *
 * Pure and deterministic: the same request always gives the same draft; no I/O, no clock, no
 * randomness. `usage` is an estimate for cost dashboards: `inputTokens` is the length of the text
 * it read (previous summary, goal and plan, new messages, instructions) divided by 4, rounded up;
 * `outputTokens` is always 0.
 *
 * - **Summary**: every sentence of the new messages and of the previous summary competes for
 *   `maxSummarySentences` slots within `maxSummaryChars`. A sentence scores for its distinct content
 *   words, numbers and identifiers (`PATCH`, `v3.12`, `user_id`), decision words (decided, use,
 *   prefer, because…), questions asked by the user, and the user's stated objective (which never
 *   ages out). Later turns weigh more than earlier ones, the previous summary's sentences less than
 *   new ones, and tool output, filler ("Hope this helps!") and, in planning mode, list items (the
 *   plan holds them) little. Near-duplicates are dropped and the chosen sentences are written in
 *   conversation order, labelled `User:` / `Assistant:` / `Tool:` where the speaker changes (the
 *   labels are read back on the next update). Words of `instructions` give the sentences that
 *   contain them a small boost.
 * - **Goal** (planning mode): the user's stated objective, rewritten as an imperative ("Help me
 *   deploy a Python app." → "Deploy a Python app"; also "I want to…", "I'm trying to…", "I'm
 *   designing…", "I need to…", "Let's…"). Once a goal is set, only an explicit change replaces it
 *   ("my goal is now…", "new goal: …", "instead, I want to…"); otherwise the previous goal is kept.
 * - **Plan** (planning mode): the newest list of two or more items in an assistant reply — numbered
 *   (`1.`, `1)`, `Step 1:`) or else bulleted (`-`, `*`, `•`) — one step per top-level item, with
 *   Markdown stripped and only the headline kept (a bold lead, or the text before a `:`/dash on a
 *   long line; at most 120 characters). Once a plan exists, a list replaces it only when the reply's
 *   lead-in or the user's request talks about a plan, steps, a revision or an alternative, so that
 *   the details of one step do not overwrite the plan; otherwise the previous plan is kept.
 * - **Progress** (planning mode): explicit completion statements by the user or the assistant —
 *   "done with step 1", "step 2 is done", "finished steps 1 and 2", "completed the first three
 *   steps", "I've finished the migration" (matched to the plan step sharing the most content words,
 *   only when at least half of the statement's words match and the match is unambiguous). Questions,
 *   negations and conditions ("once you have finished step 2") never count. Completed steps stay
 *   completed while they remain in the plan.
 *
 * Summary mode returns only `{ summary }`. An already-aborted `signal` throws an
 * {@link ExtractionError} with reason `aborted`; invalid options throw a {@link ValidationError}
 * (`INVALID_CONFIG`).
 *
 * @example
 * ```ts
 * import { createMemoryRepository, SessionContextStore } from '@ctx/core';
 * import { createExtractiveExtractor } from '@ctx/model-extractive';
 *
 * const store = new SessionContextStore({
 *   repository: createMemoryRepository(),
 *   extractor: createExtractiveExtractor({ maxSummarySentences: 8 }),
 *   config: { enablePlanning: true },
 * });
 * ```
 */
export function createExtractiveExtractor(
  options: ExtractiveExtractorOptions = {},
): ContextExtractor {
  const limits = {
    sentences: readLimit(
      options.maxSummarySentences,
      'maxSummarySentences',
      DEFAULT_MAX_SENTENCES,
      1,
      200,
    ),
    chars: readLimit(
      options.maxSummaryChars,
      'maxSummaryChars',
      DEFAULT_MAX_CHARS,
      80,
      LIMITS.summaryMaxLength,
    ),
  };
  return {
    async extract(request, callOptions): Promise<ExtractionResult> {
      const signal = callOptions?.signal;
      if (signal?.aborted) {
        throw new ExtractionError('aborted', 'The extraction was aborted', {
          cause: signal.reason,
        });
      }
      const messages = request.messages.filter((message) => message.role !== 'system');
      const summary = buildSummary(request, messages, limits);
      let draft: ContextDraft = { summary };
      if (request.planning) {
        const previous = request.previous;
        const current = extractPlan(messages, previous?.plan ?? null);
        draft = {
          summary,
          goal: extractGoal(messages, previous?.goal ?? null),
          plan: current.plan,
          progress: extractProgress(messages, current, {
            plan: previous?.plan ?? null,
            progress: previous?.progress ?? null,
          }),
        };
      }
      const parsed = ContextDraftSchema.safeParse(draft);
      if (!parsed.success) {
        throw new ExtractionError(
          'schema_mismatch',
          `The extractive extractor built an invalid draft (please report this): ${parsed.error.issues
            .map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`)
            .join('; ')}`,
          { cause: parsed.error, retryable: false },
        );
      }
      return {
        draft: parsed.data,
        usage: { inputTokens: estimateInputTokens(request), outputTokens: 0 },
      };
    },
  };
}
