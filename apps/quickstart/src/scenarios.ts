import type { FieldsSchema, Message } from '@ctx/core';
import { z } from 'zod';

/** A scripted conversation: the demo replays it turn by turn. */
export interface Scenario {
  sessionId: string;
  userId: string;
  title: string;
  planning: boolean;
  /** Custom fields the store keeps for this conversation, next to the built-in ones. */
  fields?: FieldsSchema;
  turns: Message[][];
}

export const restApiScenario: Scenario = {
  sessionId: 'todo-rest-api',
  userId: 'demo-user',
  title: 'Designing a REST API (summary mode)',
  planning: false,
  turns: [
    [
      {
        role: 'user',
        content: "I'm designing a REST API for a todo app. Should I use PUT or PATCH for updates?",
      },
      {
        role: 'assistant',
        content:
          'Use PATCH for partial updates, such as toggling the completed flag, because the client sends only the fields that change. Keep PUT for replacing a whole todo. Most todo clients only need PATCH.',
      },
    ],
    [
      { role: 'user', content: 'What about the delete endpoint?' },
      {
        role: 'assistant',
        content:
          'Expose DELETE /todos/{id}. Return 204 No Content on success and 404 when the todo does not exist. Deleting twice should be harmless, so the endpoint stays idempotent.',
      },
    ],
    [
      {
        role: 'user',
        content: 'We decided to add soft deletes later. How should I paginate GET /todos?',
      },
      {
        role: 'assistant',
        content:
          'Use cursor pagination: GET /todos?limit=50&cursor=abc returns the items and a nextCursor. Cursors stay stable when todos are added, unlike page numbers.',
      },
    ],
  ],
};

export const deployScenario: Scenario = {
  sessionId: 'python-deploy',
  userId: 'demo-user',
  title: 'Deploying a Python app (planning mode)',
  planning: true,
  // A domain fact kept as exactly as the plan: extracted by a model, rendered as "Target platform".
  fields: z.object({
    platform: z
      .string()
      .describe('The platform the app is deployed to, as the user named it (e.g. Fly.io, AWS ECS)')
      .meta({ title: 'Target platform' }),
  }),
  turns: [
    [
      {
        role: 'user',
        content: 'Help me deploy a Python app to production on Fly.io. Give me the steps.',
      },
      {
        role: 'assistant',
        content: [
          'Here is a plan:',
          '1. Containerize the app with Docker',
          '2. Set up a managed PostgreSQL database',
          '3. Configure environment variables and secrets',
          '4. Deploy behind a reverse proxy with HTTPS',
          '5. Add monitoring and logging',
        ].join('\n'),
      },
    ],
    [
      { role: 'user', content: "Done with step 1. What's next?" },
      {
        role: 'assistant',
        content:
          'Next is the database: create a managed PostgreSQL instance and run your migrations against it.',
      },
    ],
    [
      {
        role: 'user',
        content:
          'I finished setting up the PostgreSQL database. The secrets live in the platform vault.',
      },
      {
        role: 'assistant',
        content:
          'Good. Step 3 is about wiring those secrets in as environment variables; never bake them into the image.',
      },
    ],
  ],
};

export const scenarios = [restApiScenario, deployScenario];
