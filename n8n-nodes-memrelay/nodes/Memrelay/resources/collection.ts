import type { INodeProperties } from 'n8n-workflow';
import { OMIT_EMPTY, show, unwrap } from '../shared/descriptions';

const C = 'collection';

export const collectionOperations: INodeProperties = {
	displayName: 'Operation',
	name: 'operation',
	type: 'options',
	noDataExpression: true,
	displayOptions: { show: { resource: [C] } },
	default: 'getAll',
	options: [
		{
			name: 'Get Many',
			value: 'getAll',
			action: 'Get many collections',
			description: 'The org\'s collections (typed property schemas per entity type)',
			routing: { request: { method: 'GET', url: '/collections' }, ...unwrap('data.collections') },
		},
	],
};

export const collectionFields: INodeProperties[] = [
	{
		displayName: 'Entity Type Name or ID',
		name: 'collectionType',
		type: 'options',
		typeOptions: { loadOptionsMethod: 'getEntityTypes' },
		default: '',
		description:
			'Only collections of this entity type. Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
		displayOptions: show(C, ['getAll']),
		routing: { send: { type: 'query', property: 'type', value: OMIT_EMPTY } },
	},
];
