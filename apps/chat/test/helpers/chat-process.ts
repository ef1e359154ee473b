import { chatLauncher } from './chat-launcher.js';

export { type ChatProcess, type ChatRun, chatEnv } from './chat-launcher.js';

/** Runs this app's `dist/main.js`. */
export const { startChat, runChat } = chatLauncher(new URL('../../', import.meta.url));
