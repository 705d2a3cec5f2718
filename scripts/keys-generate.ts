// Prints a new Fernet key for ENCRYPTION_KEY, in the form Python's Fernet.generate_key() makes.
import { generateKey } from "../shared/crypto/fernet.ts";

console.log(generateKey());
