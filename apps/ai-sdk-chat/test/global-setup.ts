export { setup } from 'chat/testing/global-setup';
