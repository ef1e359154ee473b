import type { Interface } from 'node:readline';

/** Where the chat writes, and how. */
export interface Terminal {
  /** Writes one or more lines to standard output. */
  line(text: string): void;
  /** Writes text to standard output as it is (a streamed reply, piece by piece). */
  write(text: string): void;
  /** Writes a de-emphasised line (dim on a colour terminal). */
  note(text: string): void;
  /** Writes a line to standard error. */
  error(text: string): void;
  /**
   * A line that arrives while the user may be typing (background events): on an interactive
   * terminal it is written above the prompt, which is then redrawn.
   */
  interject(text: string): void;
  /** Attaches the readline interface whose prompt is shown between turns (interactive only). */
  attach(readline: Interface | undefined): void;
  /** Shows the prompt (interactive only). */
  prompt(): void;
  /** Marks the prompt as hidden while a line is processed. */
  busy(): void;
}

/** Builds the {@link Terminal} on the given streams. Colour only on a TTY without `NO_COLOR`. */
export function createTerminal(
  output: NodeJS.WritableStream & { isTTY?: boolean },
  errorOutput: NodeJS.WritableStream,
  env: Readonly<Record<string, string | undefined>>,
): Terminal {
  const interactive = output.isTTY === true;
  const colour = interactive && !env.NO_COLOR;
  const dim = (text: string) => (colour ? `\x1b[2m${text}\x1b[22m` : text);
  let readline: Interface | undefined;
  let prompting = false;

  return {
    line(text) {
      output.write(`${text}\n`);
    },
    write(text) {
      output.write(text);
    },
    note(text) {
      output.write(`${dim(text)}\n`);
    },
    error(text) {
      errorOutput.write(`${text}\n`);
    },
    interject(text) {
      if (readline && prompting) {
        // Clear the prompt line, print above it, then redraw the prompt with what was typed.
        output.write(`\r\x1b[K${dim(text)}\n`);
        readline.prompt(true);
      } else {
        output.write(`${dim(text)}\n`);
      }
    },
    attach(value) {
      readline = value;
    },
    prompt() {
      if (!readline) return;
      prompting = true;
      readline.prompt();
    },
    busy() {
      prompting = false;
    },
  };
}
