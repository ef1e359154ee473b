import { type ContextRepository, type SessionContext, SessionContextStore } from '@ctx/core';
import { createExtractiveExtractor } from '@ctx/model-extractive';
import { type ModelMessage, streamText, wrapLanguageModel } from 'ai';
import { createSessionContextMiddleware } from '../../src/index.js';
import { MockLanguageModel, streamResult, textStreamParts } from './models.js';

export const SYSTEM = 'You are a travel assistant.';

export interface Conversation {
  /** The system prompt the model received in turn 1 and in turn 2. */
  systemPrompts: string[];
  /** The block rendered from the stored snapshot after turn 1. */
  blockAfterTurn1: string;
  /** The stored snapshot after turn 2. */
  snapshot: SessionContext | null;
}

/**
 * Two turns of a chat through `streamText` and the middleware, the way an app runs them: the app
 * keeps only the latest user message (its history is truncated), so whatever the model knows of
 * turn 1 in turn 2 comes from the session context. The extractor is the LLM-free extractive one.
 */
export async function runTwoTurnConversation(
  repository: ContextRepository,
  sessionId: string,
): Promise<Conversation> {
  const store = new SessionContextStore({ repository, extractor: createExtractiveExtractor() });
  const middleware = createSessionContextMiddleware({ store });
  const model = new MockLanguageModel({
    doStream: [
      streamResult(textStreamParts(['Lisbon in May is ', 'warm; book Alfama early.'])),
      streamResult(textStreamParts(['Take the 28 tram ', 'from Martim Moniz.'])),
    ],
  });
  const chat = wrapLanguageModel({ model, middleware });
  const turn = async (messages: ModelMessage[]) => {
    const result = streamText({
      model: chat,
      system: SYSTEM,
      messages,
      providerOptions: { ctx: { sessionId, userId: 'alice' } },
    });
    for await (const _delta of result.textStream) {
      // a chat UI prints the deltas as they arrive
    }
    // The turn is recorded and folded in the background; a chat waits for nothing. The test waits
    // so that turn 2 sees the folded context deterministically.
    await middleware.flush();
  };

  await turn([{ role: 'user', content: 'I am planning a week in Lisbon in May. Where to stay?' }]);
  const blockAfterTurn1 = await store.render(sessionId);
  await turn([{ role: 'user', content: 'How do I get to the castle from there?' }]);
  const snapshot = await store.get(sessionId);
  await store.close();
  return {
    systemPrompts: model.doStreamCalls.map((call) => {
      const [first] = call.prompt;
      return first?.role === 'system' ? first.content : '';
    }),
    blockAfterTurn1,
    snapshot,
  };
}
