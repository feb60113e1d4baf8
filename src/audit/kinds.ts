// What the auditor knows of PostgreSQL's grammar, as explicit lists: the class of every statement kind,
// and the node kinds it reads inside the statements it analyzes. A kind on neither list makes the
// statement unreadable (refused under a tenant): a parse-node kind added by a future parser release, or
// one the walker was not written for, can never pass unseen. test/audit-kinds.test.ts enumerates every
// node kind of the installed libpg-query's grammar (its type definitions) against these lists.
import type { Node } from './nodes';

/**
 * What a statement kind is to the auditor:
 * - `analyzed`: read by the walker (queries, writes, cursors, and what runs code: EXECUTE, DO, CALL);
 * - `defines`: defines SQL that runs later or changes how isolation works (views, rules, triggers,
 *   functions, policies, row-level security switches, roles, foreign servers, publications...): refused
 *   under a tenant, and in strict mode outside withoutTenant when it names a tenant table;
 * - `schema`: a schema change, refused under a tenant when it names a tenant table;
 * - `harmless`: reads or changes no tenant's rows (transaction control, SHOW, LISTEN, COMMENT, VACUUM...);
 * - `unknowable`: never a top-level statement of SQL text (plpgsql's, or the planner's), refused.
 */
export type StatementClass = 'analyzed' | 'defines' | 'schema' | 'harmless' | 'unknowable';

export const STATEMENTS: Readonly<Record<string, StatementClass>> = {
  // read by the walker
  SelectStmt: 'analyzed',
  InsertStmt: 'analyzed',
  UpdateStmt: 'analyzed',
  DeleteStmt: 'analyzed',
  MergeStmt: 'analyzed',
  ExplainStmt: 'analyzed',
  DeclareCursorStmt: 'analyzed',
  FetchStmt: 'analyzed',
  ClosePortalStmt: 'analyzed',
  CreateTableAsStmt: 'analyzed',
  CopyStmt: 'analyzed',
  TruncateStmt: 'analyzed',
  VariableSetStmt: 'analyzed',
  CreateFunctionStmt: 'analyzed',
  ExecuteStmt: 'analyzed',
  DoStmt: 'analyzed',
  CallStmt: 'analyzed',
  AlterTableStmt: 'analyzed',
  CreateSchemaStmt: 'analyzed',
  // SQL that runs later, or a change of how isolation works
  ViewStmt: 'defines',
  RuleStmt: 'defines',
  CreateTrigStmt: 'defines',
  CreateEventTrigStmt: 'defines',
  AlterEventTrigStmt: 'defines',
  CreatePolicyStmt: 'defines',
  AlterPolicyStmt: 'defines',
  AlterFunctionStmt: 'defines',
  CreatePLangStmt: 'defines',
  CreateCastStmt: 'defines',
  CreateTransformStmt: 'defines',
  CreateConversionStmt: 'defines',
  DefineStmt: 'defines',
  CreateOpClassStmt: 'defines',
  CreateOpFamilyStmt: 'defines',
  AlterOpFamilyStmt: 'defines',
  AlterOperatorStmt: 'defines',
  CreateAmStmt: 'defines',
  CreateExtensionStmt: 'defines',
  AlterExtensionStmt: 'defines',
  AlterExtensionContentsStmt: 'defines',
  CreateFdwStmt: 'defines',
  AlterFdwStmt: 'defines',
  CreateForeignServerStmt: 'defines',
  AlterForeignServerStmt: 'defines',
  CreateForeignTableStmt: 'defines',
  CreateUserMappingStmt: 'defines',
  AlterUserMappingStmt: 'defines',
  DropUserMappingStmt: 'defines',
  ImportForeignSchemaStmt: 'defines',
  CreateRoleStmt: 'defines',
  AlterRoleStmt: 'defines',
  AlterRoleSetStmt: 'defines',
  DropRoleStmt: 'defines',
  GrantRoleStmt: 'defines',
  AlterDefaultPrivilegesStmt: 'defines',
  AlterSystemStmt: 'defines',
  AlterDatabaseStmt: 'defines',
  AlterDatabaseSetStmt: 'defines',
  LoadStmt: 'defines',
  SecLabelStmt: 'defines',
  CreatePublicationStmt: 'defines',
  AlterPublicationStmt: 'defines',
  CreateSubscriptionStmt: 'defines',
  AlterSubscriptionStmt: 'defines',
  DropSubscriptionStmt: 'defines',
  DropOwnedStmt: 'defines',
  ReassignOwnedStmt: 'defines',
  // schema changes: refused under a tenant when they name a tenant table
  DropStmt: 'schema',
  RenameStmt: 'schema',
  IndexStmt: 'schema',
  CreateStmt: 'schema',
  AlterObjectSchemaStmt: 'schema',
  AlterObjectDependsStmt: 'schema',
  AlterOwnerStmt: 'schema',
  GrantStmt: 'schema',
  ReplicaIdentityStmt: 'schema',
  CreateStatsStmt: 'schema',
  AlterStatsStmt: 'schema',
  AlterTableMoveAllStmt: 'schema',
  CreateSeqStmt: 'schema',
  AlterSeqStmt: 'schema',
  RefreshMatViewStmt: 'schema',
  // no tenant's rows read or changed
  TransactionStmt: 'harmless',
  VariableShowStmt: 'harmless',
  ListenStmt: 'harmless',
  UnlistenStmt: 'harmless',
  NotifyStmt: 'harmless',
  DiscardStmt: 'harmless',
  CheckPointStmt: 'harmless',
  PrepareStmt: 'harmless', // runs nothing; EXECUTE is refused under a tenant
  DeallocateStmt: 'harmless',
  ConstraintsSetStmt: 'harmless',
  CommentStmt: 'harmless',
  VacuumStmt: 'harmless',
  LockStmt: 'harmless',
  ClusterStmt: 'harmless',
  ReindexStmt: 'harmless',
  CreatedbStmt: 'harmless',
  DropdbStmt: 'harmless',
  AlterDatabaseRefreshCollStmt: 'harmless',
  CreateTableSpaceStmt: 'harmless',
  DropTableSpaceStmt: 'harmless',
  AlterTableSpaceOptionsStmt: 'harmless',
  AlterCollationStmt: 'harmless',
  AlterDomainStmt: 'harmless',
  CreateDomainStmt: 'harmless',
  CompositeTypeStmt: 'harmless',
  CreateEnumStmt: 'harmless',
  CreateRangeStmt: 'harmless',
  AlterEnumStmt: 'harmless',
  AlterTypeStmt: 'harmless',
  AlterTSDictionaryStmt: 'harmless',
  AlterTSConfigurationStmt: 'harmless',
  // not statements of SQL text
  SetOperationStmt: 'unknowable',
  ReturnStmt: 'unknowable',
  PLAssignStmt: 'unknowable',
  RawStmt: 'unknowable',
};

/**
 * Node kinds the walker reads inside an analyzed statement: the raw parser's expressions, clauses and
 * FROM items. Every sub-select among them is analyzed (SubLink, JSON_ARRAY(SELECT ...)); every FROM item
 * kind is handled by name (analyze.ts `fromItem`). The planner's kinds (Var, Query, RangeTblEntry...)
 * never come out of the parser and are not here.
 */
export const READ_NODES: ReadonlySet<string> = new Set([
  // values and names
  'Integer',
  'Float',
  'Boolean',
  'String',
  'BitString',
  'List',
  'A_Const',
  'ParamRef',
  'ColumnRef',
  'A_Star',
  'A_Indices',
  'A_Indirection',
  'A_ArrayExpr',
  'TypeName',
  'TypeCast',
  'CollateClause',
  'Alias',
  'RoleSpec',
  'DefElem',
  // expressions
  'A_Expr',
  'BoolExpr',
  'BooleanTest',
  'NullTest',
  'CaseExpr',
  'CaseWhen',
  'CoalesceExpr',
  'MinMaxExpr',
  'SQLValueFunction',
  'RowExpr',
  'FuncCall',
  'NamedArgExpr',
  'SubLink',
  'XmlExpr',
  'XmlSerialize',
  'SetToDefault',
  'CurrentOfExpr',
  'GroupingSet',
  'GroupingFunc',
  'MultiAssignRef',
  'JsonFormat',
  'JsonReturning',
  'JsonValueExpr',
  'JsonOutput',
  'JsonArgument',
  'JsonFuncExpr',
  'JsonTablePathSpec',
  'JsonTableColumn',
  'JsonKeyValue',
  'JsonParseExpr',
  'JsonScalarExpr',
  'JsonSerializeExpr',
  'JsonObjectConstructor',
  'JsonArrayConstructor',
  'JsonArrayQueryConstructor',
  'JsonAggConstructor',
  'JsonObjectAgg',
  'JsonArrayAgg',
  'JsonIsPredicate',
  'JsonBehavior',
  // clauses
  'ResTarget',
  'SortBy',
  'WindowDef',
  'WithClause',
  'CommonTableExpr',
  'CTESearchClause',
  'CTECycleClause',
  'OnConflictClause',
  'InferClause',
  'IndexElem',
  'LockingClause',
  'IntoClause',
  'MergeWhenClause',
  // FROM items (each handled by name in fromItem)
  'RangeVar',
  'RangeSubselect',
  'JoinExpr',
  'RangeFunction',
  'RangeTableFunc',
  'RangeTableFuncCol',
  'RangeTableSample',
  'JsonTable',
  // statements inside statements: sub-selects, data-changing CTEs, EXPLAIN / DECLARE / CREATE ... AS queries
  'SelectStmt',
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
]);

/** The first node kind in `n` the walker does not read, or undefined. Node kinds are the capitalised keys. */
export function unreadKind(n: Node): string | undefined {
  if (!n || typeof n !== 'object') return undefined;
  if (Array.isArray(n)) {
    for (const x of n) {
      const k = unreadKind(x);
      if (k) return k;
    }
    return undefined;
  }
  for (const [key, value] of Object.entries(n)) {
    if (/^[A-Z]/.test(key) && !READ_NODES.has(key)) return key;
    const k = unreadKind(value);
    if (k) return k;
  }
  return undefined;
}

/**
 * Every table reference (a RangeVar's body) in `n`, except the names that are not references to rows:
 * `FOR UPDATE OF p` (an alias in the FROM list) and `SELECT ... INTO new_table` (a table it creates).
 */
export function tableReferences(n: Node, out: Node[] = []): Node[] {
  if (!n || typeof n !== 'object') return out;
  if (Array.isArray(n)) {
    for (const x of n) tableReferences(x, out);
    return out;
  }
  if (n.LockingClause || n.IntoClause) return out;
  if (typeof n.relname === 'string') out.push(n);
  for (const value of Object.values(n)) tableReferences(value, out);
  return out;
}

/** `ALTER TABLE` commands that change how isolation works on the table: row-level security, triggers, rules, inheritance. */
export const ISOLATION_COMMANDS: ReadonlySet<string> = new Set([
  'AT_EnableRowSecurity',
  'AT_DisableRowSecurity',
  'AT_ForceRowSecurity',
  'AT_NoForceRowSecurity',
  'AT_EnableTrig',
  'AT_EnableAlwaysTrig',
  'AT_EnableReplicaTrig',
  'AT_EnableTrigAll',
  'AT_EnableTrigUser',
  'AT_DisableTrig',
  'AT_DisableTrigAll',
  'AT_DisableTrigUser',
  'AT_EnableRule',
  'AT_EnableAlwaysRule',
  'AT_EnableReplicaRule',
  'AT_DisableRule',
  'AT_AddInherit',
  'AT_DropInherit',
  'AT_AttachPartition',
  'AT_DetachPartition',
  'AT_DetachPartitionFinalize',
  'AT_ChangeOwner',
]);
