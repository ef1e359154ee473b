import { chatLauncher } from 'chat/testing/chat-launcher';

export { type ChatProcess, type ChatRun, chatEnv } from 'chat/testing/chat-launcher';

/** Runs this app's `dist/main.js`. */
export const { startChat, runChat } = chatLauncher(new URL('../../', import.meta.url));
