import { MemoryStore } from '../../../runtime/store/memory.js';
import { storeContract } from './contract.js';

storeContract('MemoryStore', async () => ({ store: new MemoryStore() }));
