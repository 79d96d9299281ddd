/** The roles of an account, owned by the domain (the database enum is made from this list). */
export const USER_ROLES = ['requester', 'agent', 'admin'] as const;
export type UserRole = (typeof USER_ROLES)[number];
