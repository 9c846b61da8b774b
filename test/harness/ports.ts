export { freePort } from '../../gateway/dev/ports.js';
